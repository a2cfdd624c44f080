/*
 * kernelref.c prints test vectors for calc_test.go and for procfiles'
 * load_test.go from a C rendering of the kernel's load-average arithmetic
 * (kernel/sched/loadavg.c) and printing (fs/proc/loadavg.c), written with the
 * kernel's unsigned long types so that Go's results are checked against C
 * integer semantics, not against themselves.
 *
 *   gcc -O2 -o /tmp/kernelref kernelref.c && /tmp/kernelref > kernel_vectors.txt
 *   /tmp/kernelref fmt > ../../procfiles/testdata/loadavg-format
 *
 * Lines of kernel_vectors.txt:
 *   step EXP LOAD ACTIVE RESULT          one calc_load
 *   stepn EXP LOAD ACTIVE N RESULT       calc_load_n
 *   seq NAME I NR L1 L5 L15 TEXT         avenrun after folding NR active threads at step I
 * Lines of loadavg-format:
 *   X TEXT                               one value printed as /proc/loadavg prints it
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FSHIFT 11
#define FIXED_1 (1UL << FSHIFT)
#define EXP_1 1884UL
#define EXP_5 2014UL
#define EXP_15 2037UL
#define LOAD_INT(x) ((x) >> FSHIFT)
#define LOAD_FRAC(x) LOAD_INT(((x) & (FIXED_1 - 1)) * 100)

static unsigned long calc_load(unsigned long load, unsigned long exp, unsigned long active)
{
	unsigned long n = load * exp + active * (FIXED_1 - exp);
	if (active >= load)
		n += FIXED_1 - 1;
	return n / FIXED_1;
}

static unsigned long fixed_power_int(unsigned long x, unsigned int frac_bits, unsigned int n)
{
	unsigned long result = 1UL << frac_bits;
	if (n) {
		for (;;) {
			if (n & 1) {
				result *= x;
				result += 1UL << (frac_bits - 1);
				result >>= frac_bits;
			}
			n >>= 1;
			if (!n)
				break;
			x *= x;
			x += 1UL << (frac_bits - 1);
			x >>= frac_bits;
		}
	}
	return result;
}

static unsigned long calc_load_n(unsigned long load, unsigned long exp, unsigned long active, unsigned int n)
{
	return calc_load(load, fixed_power_int(exp, FSHIFT, n), active);
}

static void text(char *buf, unsigned long a[3])
{
	unsigned long o = FIXED_1 / 200;
	sprintf(buf, "%lu.%02lu/%lu.%02lu/%lu.%02lu",
		LOAD_INT(a[0] + o), LOAD_FRAC(a[0] + o),
		LOAD_INT(a[1] + o), LOAD_FRAC(a[1] + o),
		LOAD_INT(a[2] + o), LOAD_FRAC(a[2] + o));
}

static void seq(const char *name, int steps, unsigned long (*nr)(int))
{
	unsigned long a[3] = {0, 0, 0};
	char buf[128];
	for (int i = 1; i <= steps; i++) {
		unsigned long k = nr(i);
		unsigned long act = k * FIXED_1;
		a[0] = calc_load(a[0], EXP_1, act);
		a[1] = calc_load(a[1], EXP_5, act);
		a[2] = calc_load(a[2], EXP_15, act);
		text(buf, a);
		printf("seq %s %d %lu %lu %lu %lu %s\n", name, i, k, a[0], a[1], a[2], buf);
	}
}

static unsigned long two(int i) { (void)i; return 2; }
/* 100 threads busy for 15 minutes, then idle for 3 hours: the long decay. */
static unsigned long burst(int i) { return i <= 180 ? 100 : 0; }
static unsigned long rnd(int i) { (void)i; return (unsigned long)(rand() % 40); }
static unsigned long one(int i) { (void)i; return 1; }

int main(int argc, char **argv)
{
	unsigned long exps[3] = {EXP_1, EXP_5, EXP_15};
	if (argc > 1 && strcmp(argv[1], "fmt") == 0) {
		for (unsigned long x = 0; x < 4 * FIXED_1; x++) {
			unsigned long o = x + FIXED_1 / 200;
			printf("%lu %lu.%02lu\n", x, LOAD_INT(o), LOAD_FRAC(o));
		}
		return 0;
	}
	srand(42);
	for (int e = 0; e < 3; e++)
		for (int k = 0; k < 300; k++) {
			unsigned long load = (unsigned long)(rand() % (64 * FIXED_1));
			unsigned long act = (unsigned long)(rand() % 64) * FIXED_1;
			if (k % 3 == 0)
				act = load; /* the equality edge of the rounding */
			printf("step %lu %lu %lu %lu\n", exps[e], load, act, calc_load(load, exps[e], act));
			unsigned int n = (unsigned int)(rand() % 5000) + 1;
			printf("stepn %lu %lu %lu %u %lu\n", exps[e], load, act, n, calc_load_n(load, exps[e], act, n));
		}
	seq("two", 24, two);
	seq("one", 1000, one);
	seq("burst", 180 + 12 * 180, burst);
	seq("random", 500, rnd);
	return 0;
}
