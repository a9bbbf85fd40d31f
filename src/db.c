#include "config.h"
#include "db.h"
