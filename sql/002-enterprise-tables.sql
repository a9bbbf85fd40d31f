-- edx-enterprise tables (openedx/edx-enterprise, enterprise/models.py) with
-- their real names and Django's MySQL column types.  UUIDs are char(32)
-- lower-case hex (Django's UUIDField on MySQL); timestamps datetime(6) UTC.
--
-- Safe to apply twice; names no database.  NOT NULL columns the service
-- never sets carry defaults so its inserts work as written.

CREATE TABLE IF NOT EXISTS enterprise_enterprisecustomer (
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	uuid char(32) NOT NULL,
	name varchar(255) NOT NULL,
	slug varchar(30) NOT NULL,
	active tinyint(1) NOT NULL DEFAULT 1,
	site_id int(11) NOT NULL DEFAULT 1,
	country varchar(2) DEFAULT NULL,
	contact_email varchar(254) DEFAULT NULL,
	enable_data_sharing_consent tinyint(1) NOT NULL DEFAULT 0,
	enforce_data_sharing_consent varchar(25) NOT NULL DEFAULT 'at_enrollment',
	enable_audit_enrollment tinyint(1) NOT NULL DEFAULT 0,
	enable_audit_data_reporting tinyint(1) NOT NULL DEFAULT 0,
	replace_sensitive_sso_username tinyint(1) NOT NULL DEFAULT 0,
	hide_course_original_price tinyint(1) NOT NULL DEFAULT 0,
	enable_autocohorting tinyint(1) NOT NULL DEFAULT 0,
	enable_learner_portal tinyint(1) NOT NULL DEFAULT 1,
	enable_slug_login tinyint(1) NOT NULL DEFAULT 0,
	default_contract_discount decimal(8,5) DEFAULT NULL,
	sender_alias varchar(255) DEFAULT NULL,
	reply_to varchar(254) DEFAULT NULL,
	auth_org_id varchar(80) DEFAULT NULL,
	customer_type_id int(11) NOT NULL DEFAULT 1,
	PRIMARY KEY (uuid),
	UNIQUE KEY slug (slug)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- EnterpriseCustomerUser: user_id is a PositiveIntegerField, not a foreign
-- key (edx-enterprise does not depend on the LMS's auth_user table).
CREATE TABLE IF NOT EXISTS enterprise_enterprisecustomeruser (
	id int(11) NOT NULL AUTO_INCREMENT,
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	user_id int(10) unsigned NOT NULL,
	enterprise_customer_id char(32) NOT NULL,
	active tinyint(1) NOT NULL DEFAULT 1,
	linked tinyint(1) NOT NULL DEFAULT 1,
	is_relinkable tinyint(1) NOT NULL DEFAULT 1,
	should_inactivate_other_customers tinyint(1) NOT NULL DEFAULT 1,
	invite_key_id char(32) DEFAULT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY ecu_enterprise_customer_id_user_id_uniq (enterprise_customer_id, user_id),
	KEY enterprise_enterprisecustomeruser_user_id (user_id),
	CONSTRAINT enterprise_ecu_enterprise_customer_id_fk
		FOREIGN KEY (enterprise_customer_id) REFERENCES enterprise_enterprisecustomer (uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS enterprise_pendingenterprisecustomeruser (
	id int(11) NOT NULL AUTO_INCREMENT,
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	user_email varchar(254) NOT NULL,
	enterprise_customer_id char(32) NOT NULL,
	invite_key_id char(32) DEFAULT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY pecu_user_email_enterprise_customer_id_uniq (user_email, enterprise_customer_id),
	CONSTRAINT enterprise_pecu_enterprise_customer_id_fk
		FOREIGN KEY (enterprise_customer_id) REFERENCES enterprise_enterprisecustomer (uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS enterprise_enterpriseenrollmentsource (
	id int(11) NOT NULL AUTO_INCREMENT,
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	name varchar(64) NOT NULL,
	slug varchar(30) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY slug (slug)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The source every enrollment made through this endpoint records.
INSERT IGNORE INTO enterprise_enterpriseenrollmentsource (created, modified, name, slug)
VALUES (UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 'Customer Admin Enrollment', 'customer_admin');

CREATE TABLE IF NOT EXISTS enterprise_pendingenrollment (
	id int(11) NOT NULL AUTO_INCREMENT,
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	course_id varchar(255) NOT NULL,
	course_mode varchar(25) NOT NULL,
	user_id int(11) NOT NULL,
	cohort_name varchar(255) DEFAULT NULL,
	discount_percentage decimal(8,5) NOT NULL DEFAULT 0.00000,
	sales_force_id varchar(255) DEFAULT NULL,
	source_id int(11) DEFAULT NULL,
	license_uuid char(32) DEFAULT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY pendingenrollment_user_id_course_id_uniq (user_id, course_id),
	KEY enterprise_pendingenrollment_source_id (source_id),
	CONSTRAINT enterprise_pe_user_id_fk
		FOREIGN KEY (user_id) REFERENCES enterprise_pendingenterprisecustomeruser (id),
	CONSTRAINT enterprise_pe_source_id_fk
		FOREIGN KEY (source_id) REFERENCES enterprise_enterpriseenrollmentsource (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS enterprise_enterprisecourseenrollment (
	id int(11) NOT NULL AUTO_INCREMENT,
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	course_id varchar(255) NOT NULL,
	enterprise_customer_user_id int(11) NOT NULL,
	source_id int(11) DEFAULT NULL,
	saved_for_later tinyint(1) NOT NULL DEFAULT 0,
	unenrolled tinyint(1) DEFAULT NULL,
	unenrolled_at datetime(6) DEFAULT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY ece_enterprise_customer_user_id_course_id_uniq (enterprise_customer_user_id, course_id),
	KEY enterprise_enterprisecourseenrollment_source_id (source_id),
	CONSTRAINT enterprise_ece_ecu_id_fk
		FOREIGN KEY (enterprise_customer_user_id) REFERENCES enterprise_enterprisecustomeruser (id),
	CONSTRAINT enterprise_ece_source_id_fk
		FOREIGN KEY (source_id) REFERENCES enterprise_enterpriseenrollmentsource (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- EnterpriseFulfillmentSource subclasses: one row per enterprise course
-- enrollment (OneToOneField), a public uuid shown to callers.
CREATE TABLE IF NOT EXISTS enterprise_licensedenterprisecourseenrollment (
	id int(11) NOT NULL AUTO_INCREMENT,
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	uuid char(32) NOT NULL,
	fulfillment_type varchar(128) NOT NULL DEFAULT 'license',
	is_revoked tinyint(1) NOT NULL DEFAULT 0,
	license_uuid char(32) NOT NULL,
	enterprise_course_enrollment_id int(11) DEFAULT NULL,
	enterprise_course_entitlement_id int(11) DEFAULT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY uuid (uuid),
	UNIQUE KEY enterprise_course_enrollment_id (enterprise_course_enrollment_id),
	UNIQUE KEY enterprise_course_entitlement_id (enterprise_course_entitlement_id),
	CONSTRAINT enterprise_lece_ece_id_fk
		FOREIGN KEY (enterprise_course_enrollment_id) REFERENCES enterprise_enterprisecourseenrollment (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS enterprise_learnercreditenterprisecourseenrollment (
	id int(11) NOT NULL AUTO_INCREMENT,
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	uuid char(32) NOT NULL,
	fulfillment_type varchar(128) NOT NULL DEFAULT 'learner_credit',
	is_revoked tinyint(1) NOT NULL DEFAULT 0,
	transaction_id char(32) NOT NULL,
	enterprise_course_enrollment_id int(11) DEFAULT NULL,
	enterprise_course_entitlement_id int(11) DEFAULT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY uuid (uuid),
	UNIQUE KEY enterprise_course_enrollment_id (enterprise_course_enrollment_id),
	UNIQUE KEY enterprise_course_entitlement_id (enterprise_course_entitlement_id),
	CONSTRAINT enterprise_lcece_ece_id_fk
		FOREIGN KEY (enterprise_course_enrollment_id) REFERENCES enterprise_enterprisecourseenrollment (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- DefaultEnterpriseEnrollmentIntention (TimeStampedModel, SoftDeletableModel):
-- content_key is a course run key or a course key ("edX+DemoX").
CREATE TABLE IF NOT EXISTS enterprise_defaultenterpriseenrollmentintention (
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	is_removed tinyint(1) NOT NULL DEFAULT 0,
	uuid char(32) NOT NULL,
	content_type varchar(127) DEFAULT NULL,
	content_key varchar(255) NOT NULL,
	enterprise_customer_id char(32) NOT NULL,
	PRIMARY KEY (uuid),
	UNIQUE KEY unique_default_enrollment_intention (enterprise_customer_id, content_key),
	CONSTRAINT enterprise_deei_enterprise_customer_id_fk
		FOREIGN KEY (enterprise_customer_id) REFERENCES enterprise_enterprisecustomer (uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS enterprise_defaultenterpriseenrollmentrealization (
	id int(11) NOT NULL AUTO_INCREMENT,
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	intended_enrollment_id char(32) NOT NULL,
	realized_enrollment_id int(11) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY realized_enrollment_id (realized_enrollment_id),
	KEY intended_enrollment_id (intended_enrollment_id),
	CONSTRAINT enterprise_deer_intended_fk
		FOREIGN KEY (intended_enrollment_id) REFERENCES enterprise_defaultenterpriseenrollmentintention (uuid),
	CONSTRAINT enterprise_deer_realized_fk
		FOREIGN KEY (realized_enrollment_id) REFERENCES enterprise_enterprisecourseenrollment (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
