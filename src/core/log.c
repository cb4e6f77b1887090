/* log.c - server messages on stderr. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

void log_msg(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n = snprintf(line, sizeof(line), "loopkit: ");
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n +
	             ((size_t)m < sizeof(line) - (size_t)n - 1 ? (size_t)m : sizeof(line) - (size_t)n - 2);
	line[len++] = '\n';
	ssize_t r = write(2, line, len);
	(void)r;
}
