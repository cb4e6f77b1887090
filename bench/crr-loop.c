/* crr-loop.c - the plain baseline for bench/bench-crr.sh: a blocking connect, 1-byte
 * request, 1-byte answer, close loop against a blocking accept loop in another thread.
 * usage: crr-loop SECS [rst]   ("rst": the client closes with SO_LINGER 0, an RST) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int lfd;

static void *server(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		char b[16];
		if (c < 0)
			return NULL;
		if (read(c, b, 1) == 1 && write(c, "r", 1) == 1)
			while (read(c, b, sizeof(b)) > 0)
				;
		close(c);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	int rst = argc > 2 && !strcmp(argv[2], "rst");
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
		perror("listen");
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, server, NULL);
	unsigned long n = 0, fail = 0;
	double t0 = now(), end = t0 + (secs > 0 && secs <= 60 ? secs : 3);
	while (now() < end) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		char b;
		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 || write(c, "q", 1) != 1 ||
		    read(c, &b, 1) != 1)
			fail++;
		else
			n++;
		if (rst) {
			struct linger lg = { 1, 0 };
			setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		if (c >= 0)
			close(c);
	}
	double el = now() - t0;
	printf("{\"connections\": %lu, \"failed\": %lu, \"elapsed_s\": %.3f, \"connections_per_s\": %.1f}\n", n, fail,
	       el, n / el);
	return 0;
}
