/* doctor.c - `loopkit doctor`: is the loopback stack healthy? Each check PASS/WARN/FAIL/SKIP. */
#include <stdio.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "diag/doctor.h"
#include "diag/ports.h"

struct doctor_args {
	unsigned port;
	int json;
};
#define AT(f) CMD_AT(struct doctor_args, f)

static const struct cmd_flag doctor_flags[] = {
        {"port", 'p', "N", CMD_HOME_PORT, "the port to look at: free or held, and by whom", CMD_UINT,
         AT(port), .min = 1, .max = 65535},
        {"json", 0, NULL, NULL, "one JSON document: {\"checks\":[...],\"summary\":{...}}", CMD_SWITCH,
         AT(json)},
        {0},
};

static int doctor_main(void *p)
{
	const struct doctor_args *a = p;
	struct doctor_report r;
	doctor_run((uint16_t)a->port, &r);
	if (a->json) {
		struct buf b;
		buf_init(&b, 1 << 20);
		if (doctor_json(&b, &r) == 0) {
			fwrite(buf_start(&b), 1, buf_used(&b), stdout);
			fputc('\n', stdout);
		}
		buf_free(&b);
	} else {
		doctor_print(stdout, &r, diag_color_ok(stdout));
	}
	fflush(stdout);
	return r.count[DOCTOR_FAIL] ? 1 : 0;
}

const struct cmd_verb cmd_doctor = {
        .name = "doctor",
        .summary = "is the loopback stack healthy: each check PASS/WARN/FAIL/SKIP with a hint",
        .about = "Checks the loopback stack: lo, its addresses, localhost, ICMP/TCP/UDP round trips on\n"
                 "IPv4 and IPv6, ephemeral ports, a port, limits, isolation. Exit 1 when a check FAILs.\n",
        .flags = doctor_flags,
        .size = sizeof(struct doctor_args),
        .run = doctor_main,
        .examples = "$ loopkit doctor\n$ loopkit doctor --port 8080 --json\n",
};
