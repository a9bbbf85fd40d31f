#include "config.h"

#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "db.h"
#include "metrics.h"
#include "outbox.h"

/* The status codes the service answers with; anything else counts as "other". */
static const int codes[] = { 200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 415, 500, 503 };
#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* Latency histogram upper bounds, seconds (the last bucket is +Inf). */
static const double bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

static const char *const item_names[MET_ITEM__COUNT] = {
	"success_created", "success_existing", "pending_created", "pending_existing",
	"failure", "invalid_user_id", "invalid_email",
};

struct shared {
	uint64_t requests[NCODES + 1];
	uint64_t buckets[NBOUNDS + 1];
	uint64_t latency_count;
	uint64_t latency_sum_us;
	uint64_t items[MET_ITEM__COUNT];
	uint64_t deliveries[MET_CHANNEL__COUNT][MET_DELIVERY__COUNT];
	uint64_t db_errors;
	uint64_t worker_restarts;
};

/* Before metrics_init() (unit tests, --check-config) counts go here. */
static struct shared local;
static struct shared *shm = &local;

const char *
metrics_strerror(enum metrics_err e)
{
	switch (e) {
	case METRICS_OK: return "success";
	case METRICS_ERR_MAP: return "shared counters cannot be mapped";
	case METRICS_ERR_FULL: return "output buffer full";
	}
	return "unknown metrics error";
}

enum metrics_err
metrics_init(void)
{
	void *p = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return METRICS_ERR_MAP;
	memset(p, 0, sizeof(struct shared));
	shm = p;
	return METRICS_OK;
}

static void
add(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static uint64_t
get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

void
metrics_request(int status, double seconds)
{
	size_t i;

	for (i = 0; i < NCODES && codes[i] != status; i++)
		;
	add(&shm->requests[i], 1);
	for (i = 0; i < NBOUNDS && seconds > bounds[i]; i++)
		;
	add(&shm->buckets[i], 1);
	add(&shm->latency_count, 1);
	add(&shm->latency_sum_us, seconds > 0 ? (uint64_t)(seconds * 1e6) : 0);
}

void
metrics_items(enum metrics_item what, uint64_t n)
{
	if (what < MET_ITEM__COUNT && n > 0)
		add(&shm->items[what], n);
}

void
metrics_delivery(enum metrics_channel ch, enum metrics_delivery what, uint64_t n)
{
	if (ch < MET_CHANNEL__COUNT && what < MET_DELIVERY__COUNT && n > 0)
		add(&shm->deliveries[ch][what], n);
}

void
metrics_db_error(void)
{
	add(&shm->db_errors, 1);
}

void
metrics_worker_restart(void)
{
	add(&shm->worker_restarts, 1);
}

long
metrics_read_outbox(struct db *db, struct arena *a, struct metrics_outbox_row **out)
{
	struct outbox_depth cells[OUTBOX_DEPTH_CELLS];
	struct metrics_outbox_row *rows;
	size_t i;

	if (outbox_read_depth(db, cells) != DB_OK)
		return -1;
	if ((rows = arena_calloc(a, OUTBOX_DEPTH_CELLS, sizeof(*rows))) == NULL)
		return -1;
	for (i = 0; i < OUTBOX_DEPTH_CELLS; i++) {
		rows[i].kind = cells[i].kind;
		rows[i].state = cells[i].state;
		rows[i].count = cells[i].count;
		rows[i].oldest_due_seconds = cells[i].oldest_due_seconds;
	}
	*out = rows;
	return OUTBOX_DEPTH_CELLS;
}

/* The oldest due row's age per kind: the worst of its cells.  0, or
 * non-zero (the buf_err values OR-ed) when a line did not fit. */
static int
render_oldest_due(struct buf *out, const struct metrics_outbox_row *outbox, size_t n)
{
	static const char *const kinds[] = { "order", "email" };
	double worst;
	size_t i, k;
	int rc;

	rc = buf_puts(out, "# HELP bulk_enroll_outbox_oldest_due_seconds Age of the oldest "
	    "outbox row that is due for delivery (0: none is due).\n"
	    "# TYPE bulk_enroll_outbox_oldest_due_seconds gauge\n");
	for (k = 0; k < 2; k++) {
		worst = 0;
		for (i = 0; i < n; i++)
			if (strcmp(outbox[i].kind, kinds[k]) == 0 && outbox[i].oldest_due_seconds > worst)
				worst = outbox[i].oldest_due_seconds;
		rc |= buf_printf(out, "bulk_enroll_outbox_oldest_due_seconds{kind=\"%s\"} %.3f\n",
		    kinds[k], worst);
	}
	return rc;
}

enum metrics_err
metrics_render(struct buf *out, const struct metrics_outbox_row *outbox, size_t noutbox)
{
	uint64_t cumulative = 0;
	int rc = 0;
	size_t i;

	rc |= buf_puts(out, "# HELP bulk_enroll_requests_total HTTP responses by status code.\n"
	    "# TYPE bulk_enroll_requests_total counter\n");
	for (i = 0; i <= NCODES; i++) {
		if (i < NCODES)
			rc |= buf_printf(out, "bulk_enroll_requests_total{code=\"%d\"} %llu\n", codes[i],
			    (unsigned long long)get(&shm->requests[i]));
		else
			rc |= buf_printf(out, "bulk_enroll_requests_total{code=\"other\"} %llu\n",
			    (unsigned long long)get(&shm->requests[i]));
	}
	rc |= buf_puts(out, "# HELP bulk_enroll_request_duration_seconds Time to answer a request.\n"
	    "# TYPE bulk_enroll_request_duration_seconds histogram\n");
	for (i = 0; i <= NBOUNDS; i++) {
		cumulative += get(&shm->buckets[i]);
		if (i < NBOUNDS)
			rc |= buf_printf(out, "bulk_enroll_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
			    bounds[i], (unsigned long long)cumulative);
		else
			rc |= buf_printf(out, "bulk_enroll_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
			    (unsigned long long)cumulative);
	}
	rc |= buf_printf(out, "bulk_enroll_request_duration_seconds_sum %.6f\n"
	    "bulk_enroll_request_duration_seconds_count %llu\n",
	    (double)get(&shm->latency_sum_us) / 1e6, (unsigned long long)get(&shm->latency_count));

	rc |= buf_puts(out, "# HELP bulk_enroll_items_total Enrollment items by outcome.\n"
	    "# TYPE bulk_enroll_items_total counter\n");
	for (i = 0; i < MET_ITEM__COUNT; i++)
		rc |= buf_printf(out, "bulk_enroll_items_total{outcome=\"%s\"} %llu\n", item_names[i],
		    (unsigned long long)get(&shm->items[i]));

	rc |= buf_puts(out, "# HELP bulk_enroll_outbox_deliveries_total Outbox delivery attempts by result.\n"
	    "# TYPE bulk_enroll_outbox_deliveries_total counter\n");
	for (i = 0; i < MET_CHANNEL__COUNT; i++) {
		static const char *const ch[] = { "order", "email" };
		static const char *const res[] = { "delivered", "retried", "failed" };
		size_t j;

		for (j = 0; j < MET_DELIVERY__COUNT; j++)
			rc |= buf_printf(out, "bulk_enroll_outbox_deliveries_total{kind=\"%s\",result=\"%s\"} %llu\n",
			    ch[i], res[j], (unsigned long long)get(&shm->deliveries[i][j]));
	}
	rc |= buf_printf(out, "# HELP bulk_enroll_db_errors_total Database errors seen by responders.\n"
	    "# TYPE bulk_enroll_db_errors_total counter\nbulk_enroll_db_errors_total %llu\n",
	    (unsigned long long)get(&shm->db_errors));
	rc |= buf_printf(out, "# HELP bulk_enroll_worker_restarts_total Responders restarted by the master.\n"
	    "# TYPE bulk_enroll_worker_restarts_total counter\nbulk_enroll_worker_restarts_total %llu\n",
	    (unsigned long long)get(&shm->worker_restarts));

	rc |= buf_printf(out, "# HELP bulk_enroll_outbox_scrape_ok Whether the outbox could be read.\n"
	    "# TYPE bulk_enroll_outbox_scrape_ok gauge\nbulk_enroll_outbox_scrape_ok %d\n",
	    outbox != NULL ? 1 : 0);
	if (outbox != NULL) {
		rc |= buf_puts(out, "# HELP bulk_enroll_outbox_messages Outbox rows by kind and state.\n"
		    "# TYPE bulk_enroll_outbox_messages gauge\n");
		for (i = 0; i < noutbox; i++)
			rc |= buf_printf(out, "bulk_enroll_outbox_messages{kind=\"%s\",state=\"%s\"} %lld\n",
			    outbox[i].kind, outbox[i].state, (long long)outbox[i].count);
		rc |= render_oldest_due(out, outbox, noutbox);
	}
	return rc == 0 ? METRICS_OK : METRICS_ERR_FULL;
}
