-- The subset of Open edX LMS tables that bulk-enroll reads and writes, with
-- their real names and column types (Django's MySQL DDL), for development
-- and tests.  Against a real LMS database these tables already exist and
-- every statement here is a no-op.
--
-- Safe to apply twice; names no database: `mariadb edxapp < 001-lms-tables.sql`.
-- Columns the service does not use are included when they are NOT NULL in
-- the LMS, with defaults, so that the service's inserts work unchanged.

-- django.contrib.auth User (edx-platform keeps Django's table).
CREATE TABLE IF NOT EXISTS auth_user (
	id int(11) NOT NULL AUTO_INCREMENT,
	password varchar(128) NOT NULL DEFAULT '',
	last_login datetime(6) DEFAULT NULL,
	is_superuser tinyint(1) NOT NULL DEFAULT 0,
	username varchar(150) NOT NULL,
	first_name varchar(150) NOT NULL DEFAULT '',
	last_name varchar(150) NOT NULL DEFAULT '',
	email varchar(254) NOT NULL,
	is_staff tinyint(1) NOT NULL DEFAULT 0,
	is_active tinyint(1) NOT NULL DEFAULT 1,
	date_joined datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	PRIMARY KEY (id),
	UNIQUE KEY username (username),
	-- the service matches learners by e-mail (case-insensitively, through the
	-- column's _ci collation); the LMS has this index too (email lookups).
	KEY auth_user_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- openedx/core/djangoapps/content/course_overviews: CourseOverview.
CREATE TABLE IF NOT EXISTS course_overviews_courseoverview (
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	version int(11) NOT NULL DEFAULT 1,
	id varchar(255) NOT NULL,
	_location varchar(255) NOT NULL DEFAULT '',
	org longtext NOT NULL DEFAULT '',
	display_name longtext DEFAULT NULL,
	display_number_with_default longtext NOT NULL DEFAULT '',
	display_org_with_default longtext NOT NULL DEFAULT '',
	start datetime(6) DEFAULT NULL,
	end datetime(6) DEFAULT NULL,
	advertised_start longtext DEFAULT NULL,
	announcement datetime(6) DEFAULT NULL,
	course_image_url longtext NOT NULL DEFAULT '',
	social_sharing_url longtext DEFAULT NULL,
	end_of_course_survey_url longtext DEFAULT NULL,
	certificates_display_behavior longtext DEFAULT NULL,
	certificates_show_before_end tinyint(1) NOT NULL DEFAULT 0,
	cert_html_view_enabled tinyint(1) NOT NULL DEFAULT 0,
	has_any_active_web_certificate tinyint(1) NOT NULL DEFAULT 0,
	cert_name_short longtext NOT NULL DEFAULT '',
	cert_name_long longtext NOT NULL DEFAULT '',
	lowest_passing_grade decimal(5,2) DEFAULT NULL,
	days_early_for_beta double DEFAULT NULL,
	mobile_available tinyint(1) NOT NULL DEFAULT 0,
	visible_to_staff_only tinyint(1) NOT NULL DEFAULT 0,
	_pre_requisite_courses_json longtext NOT NULL DEFAULT '[]',
	enrollment_start datetime(6) DEFAULT NULL,
	enrollment_end datetime(6) DEFAULT NULL,
	enrollment_domain longtext DEFAULT NULL,
	invitation_only tinyint(1) NOT NULL DEFAULT 0,
	max_student_enrollments_allowed int(11) DEFAULT NULL,
	catalog_visibility longtext DEFAULT NULL,
	short_description longtext DEFAULT NULL,
	course_video_url longtext DEFAULT NULL,
	effort longtext DEFAULT NULL,
	self_paced tinyint(1) NOT NULL DEFAULT 0,
	marketing_url longtext DEFAULT NULL,
	eligible_for_financial_aid tinyint(1) NOT NULL DEFAULT 1,
	language longtext DEFAULT NULL,
	certificate_available_date datetime(6) DEFAULT NULL,
	end_date datetime(6) DEFAULT NULL,
	start_date datetime(6) DEFAULT NULL,
	banner_image_url longtext NOT NULL DEFAULT '',
	has_highlights tinyint(1) DEFAULT NULL,
	allow_proctoring_opt_out tinyint(1) NOT NULL DEFAULT 0,
	enable_proctored_exams tinyint(1) NOT NULL DEFAULT 0,
	proctoring_escalation_email longtext DEFAULT NULL,
	proctoring_provider longtext DEFAULT NULL,
	entrance_exam_enabled tinyint(1) NOT NULL DEFAULT 0,
	entrance_exam_id varchar(255) NOT NULL DEFAULT '',
	entrance_exam_minimum_score_pct double NOT NULL DEFAULT 0.65,
	external_id varchar(128) DEFAULT NULL,
	has_ended tinyint(1) DEFAULT NULL,
	PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- common/djangoapps/course_modes: CourseMode.
CREATE TABLE IF NOT EXISTS course_modes_coursemode (
	id int(11) NOT NULL AUTO_INCREMENT,
	course_id varchar(255) NOT NULL,
	mode_slug varchar(100) NOT NULL,
	mode_display_name varchar(255) NOT NULL DEFAULT '',
	min_price int(11) NOT NULL DEFAULT 0,
	currency varchar(8) NOT NULL DEFAULT 'usd',
	expiration_datetime datetime(6) DEFAULT NULL,
	expiration_date date DEFAULT NULL,
	suggested_prices varchar(255) NOT NULL DEFAULT '',
	description longtext DEFAULT NULL,
	sku varchar(255) DEFAULT NULL,
	expiration_datetime_is_explicit tinyint(1) NOT NULL DEFAULT 0,
	bulk_sku varchar(255) DEFAULT NULL,
	android_sku varchar(255) DEFAULT NULL,
	ios_sku varchar(255) DEFAULT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY course_modes_coursemode_course_id_mode_slug_currency (course_id, mode_slug, currency)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- common/djangoapps/student: CourseEnrollment.
CREATE TABLE IF NOT EXISTS student_courseenrollment (
	id int(11) NOT NULL AUTO_INCREMENT,
	course_id varchar(255) NOT NULL,
	created datetime(6) DEFAULT NULL,
	is_active tinyint(1) NOT NULL,
	mode varchar(100) NOT NULL,
	user_id int(11) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY student_courseenrollment_user_id_course_id (user_id, course_id),
	KEY student_courseenrollment_course_id (course_id),
	KEY student_courseenrollment_created (created),
	CONSTRAINT student_courseenrollment_user_id_fk_auth_user_id
		FOREIGN KEY (user_id) REFERENCES auth_user (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
