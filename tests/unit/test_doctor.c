/* test_doctor.c - unit tests for diag/doctor: ephemeral thresholds and the JSON rendering. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "diag/doctor.h"

static void test_ephemeral_thresholds(void **state)
{
	static const struct {
		size_t used, range;
		enum doctor_status want;
	} rows[] = {
	        {0, 28232, DOCTOR_PASS},     {14116, 28232, DOCTOR_PASS}, /* exactly 50% */
	        {14117, 28232, DOCTOR_WARN}, {25408, 28232, DOCTOR_WARN}, /* 89.99% */
	        {25409, 28232, DOCTOR_FAIL}, {28232, 28232, DOCTOR_FAIL}, {5, 10, DOCTOR_PASS},
	        {6, 10, DOCTOR_WARN},        {9, 10, DOCTOR_WARN},        {10, 10, DOCTOR_FAIL},
	        {0, 0, DOCTOR_FAIL}, /* empty range */
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		enum doctor_status got = doctor_ephemeral_status(rows[i].used, rows[i].range);
		if (got != rows[i].want)
			fail_msg("row %zu: %zu of %zu: %s, want %s", i, rows[i].used, rows[i].range,
			         doctor_status_name(got), doctor_status_name(rows[i].want));
	}
}

static void test_json_rendering(void **state)
{
	struct doctor_report r;
	struct buf b;

	memset(&r, 0, sizeof r);
	snprintf(r.checks[0].name, sizeof r.checks[0].name, "lo");
	r.checks[0].status = DOCTOR_FAIL;
	snprintf(r.checks[0].detail, sizeof r.checks[0].detail, "lo is \"DOWN\"");
	snprintf(r.checks[0].hint, sizeof r.checks[0].hint, "ip link set lo up");
	r.checks[0].ms = 0.12345;
	r.n = 1;
	r.count[DOCTOR_FAIL] = 1;
	buf_init(&b, 4096);
	assert_int_equal(doctor_json(&b, &r), 0);
	assert_true(json_valid(buf_start(&b), buf_used(&b)));
	assert_int_equal(buf_append(&b, "", 1), 0);
	assert_string_equal(
	        buf_start(&b),
	        "{\"checks\":[{\"name\":\"lo\",\"status\":\"FAIL\",\"detail\":\"lo is \\\"DOWN\\\"\","
	        "\"hint\":\"ip link set lo up\",\"ms\":0.123}],"
	        "\"summary\":{\"pass\":0,\"warn\":0,\"fail\":1,\"skip\":0}}");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ephemeral_thresholds),
	        cmocka_unit_test(test_json_rendering),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
