/* isolate-stamp.c - for bench/isolate.sh: prints CLOCK_MONOTONIC (ns) the moment it runs. */
#include <stdio.h>
#include <time.h>

int main(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	printf("%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	return 0;
}
