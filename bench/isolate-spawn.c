/* isolate-spawn.c - for bench/isolate.sh: the start-up of each tool as posix_spawn sees
 * it, without Python's own fork in the figure. Usage: isolate-spawn RUNS STAMP 'NAME|ARGV'...
 * runs each tool's ARGV followed by STAMP (which prints CLOCK_MONOTONIC in ns as it
 * starts) RUNS times, interleaved, and prints per tool the median ms until STAMP ran and
 * until the tool had exited. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_TOOLS 16
#define MAX_ARGS  32

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One run: 0 and the two times in ms, or -1 when the tool failed. */
static int run_once(char **argv, double *until, double *whole)
{
	int p[2], st;
	char out[64] = "";
	pid_t pid;
	posix_spawn_file_actions_t fa;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	long long t0 = now_ns();
	int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (e) {
		close(p[0]);
		return -1;
	}
	ssize_t n = read(p[0], out, sizeof out - 1);
	close(p[0]);
	waitpid(pid, &st, 0);
	long long t1 = now_ns();
	if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	*until = (double)(atoll(out) - t0) / 1e6;
	*whole = (double)(t1 - t0) / 1e6;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc - 3 > MAX_TOOLS) {
		fprintf(stderr, "usage: isolate-spawn RUNS STAMP 'NAME|ARGV'... (at most %d)\n", MAX_TOOLS);
		return 2;
	}
	int runs = atoi(argv[1]), nt = argc - 3;
	char *names[MAX_TOOLS], *args[MAX_TOOLS][MAX_ARGS + 2];
	double *until = calloc((size_t)(runs * nt), sizeof(double));
	double *whole = calloc((size_t)(runs * nt), sizeof(double));
	int got[MAX_TOOLS] = {0};
	if (runs < 1 || !until || !whole)
		return 2;
	for (int t = 0; t < nt; t++) {
		char *bar = strchr(argv[3 + t], '|');
		int n = 0;
		if (!bar)
			return 2;
		*bar = '\0';
		names[t] = argv[3 + t];
		for (char *s = strtok(bar + 1, " "); s && n < MAX_ARGS; s = strtok(NULL, " "))
			args[t][n++] = s;
		args[t][n++] = argv[2];
		args[t][n] = NULL;
	}
	for (int r = 0; r < runs; r++) /* interleaved: a burst of load hits every tool alike */
		for (int t = 0; t < nt; t++)
			if (run_once(args[t], &until[t * runs + got[t]], &whole[t * runs + got[t]]) == 0)
				got[t]++;
	for (int t = 0; t < nt; t++) {
		if (!got[t]) {
			printf("%s|failed\n", names[t]);
			continue;
		}
		printf("%s|%.2f|%.2f\n", names[t], median(until + t * runs, got[t]), median(whole + t * runs, got[t]));
	}
	return 0;
}
