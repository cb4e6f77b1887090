/* log.h - server messages on stderr ("loopkit: ..."), one write per line. */
#ifndef LOOPKIT_CORE_LOG_H
#define LOOPKIT_CORE_LOG_H

/* Writes "loopkit: " + message + newline to stderr in one write(2). */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
