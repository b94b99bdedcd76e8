// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmmd/clientlimit.c: one user cannot hold more than its
 * share of vmmd's connections or request bytes, users together cannot take
 * root's and the Slurm user's reserve, and slots come back when
 * connections end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "clientlimit.h"

/* max_clients 4, 2 per uid, 2 reserved, 100 request bytes per uid, the
 * Slurm user is uid 500. */
#define MAXC	4
#define PERUID	2
#define RESERVE 2
#define BYTES	100
#define SLURM	500
#define A	1000
#define B	1001
#define C	1002

enum op {
	STOP,
	ADMIT,	/* clientlimit_admit(uid) == want */
	LEAVE,	/* clientlimit_leave(uid, n) */
	CHARGE, /* clientlimit_charge(uid, n) == want */
	LEFT,	/* clientlimit_bytes_left(uid) == n */
	TOTAL,	/* l.total == n */
};

struct step {
	enum op op;
	uid_t uid;
	unsigned times; /* 0: once */
	uint64_t n;
	int want;
};

static const struct {
	const char *what;
	struct step steps[12];
} cases[] = {
    {"a user holds at most its share",
     {{ADMIT, A, PERUID, 0, 0}, {ADMIT, A, 1, 0, -EUSERS}, {TOTAL, 0, 0, 2}}},
    {"another user is still served",
     {{ADMIT, A, PERUID, 0, 0},
      {ADMIT, A, 1, 0, -EUSERS},
      {ADMIT, B, 1, 0, 0},
      {TOTAL, 0, 0, 3}}},
    {"users together fill max_clients, root and the Slurm user get the "
     "reserve",
     {{ADMIT, A, PERUID, 0, 0},
      {ADMIT, B, PERUID, 0, 0},
      {ADMIT, C, 1, 0, -EMFILE},
      {ADMIT, 0, 1, 0, 0},
      {ADMIT, SLURM, 1, 0, 0},
      {TOTAL, 0, 0, MAXC + RESERVE},
      {ADMIT, 0, 1, 0, -EMFILE}}},
    {"admins are not bound per uid",
     {{ADMIT, 0, MAXC + RESERVE, 0, 0}, {ADMIT, SLURM, 1, 0, -EMFILE}}},
    {"admins that fill everything leave users nothing",
     {{ADMIT, SLURM, MAXC + RESERVE, 0, 0}, {ADMIT, A, 1, 0, -EMFILE}}},
    {"a slot comes back when its connection ends",
     {{ADMIT, A, PERUID, 0, 0},
      {LEAVE, A, 1, 0, 0},
      {ADMIT, A, 1, 0, 0},
      {ADMIT, A, 1, 0, -EUSERS},
      {LEAVE, A, PERUID, 0, 0},
      {TOTAL, 0, 0, 0}}},
    {"a slot comes back to the users, the reserve stays the admins'",
     {{ADMIT, A, PERUID, 0, 0},
      {ADMIT, B, PERUID, 0, 0},
      {ADMIT, 0, RESERVE, 0, 0},
      {LEAVE, 0, 1, 0, 0},
      {ADMIT, C, 1, 0, -EMFILE},
      {LEAVE, B, 1, 0, 0},
      {ADMIT, C, 1, 0, 0}}},
    {"request bytes per uid",
     {{ADMIT, A, PERUID, 0, 0},
      {LEFT, A, 0, BYTES},
      {CHARGE, A, 1, 60, 0},
      {LEFT, A, 0, BYTES - 60},
      {CHARGE, A, 1, 41, -ENOBUFS},
      {CHARGE, A, 1, 40, 0},
      {LEFT, A, 0, 0},
      {LEFT, B, 0, BYTES},
      {LEAVE, A, 1, 60, 0},
      {LEFT, A, 0, 60}}},
    {"bytes of a uid with no connection are not taken",
     {{CHARGE, A, 1, 1, -ENOBUFS}, {LEFT, A, 0, BYTES}}},
    {"admins' bytes are not counted",
     {{ADMIT, 0, 1, 0, 0},
      {LEFT, 0, 0, UINT64_MAX},
      {CHARGE, 0, 1, 1u << 30, 0},
      {LEFT, SLURM, 0, UINT64_MAX}}},
};

static void run_step(struct clientlimit *l, const struct step *st,
		     const char *what, size_t i)
{
	for (unsigned t = 0; t < (st->times ? st->times : 1); t++) {
		int r = 0;

		switch (st->op) {
		case STOP:
			return;
		case ADMIT:
			r = clientlimit_admit(l, st->uid);
			break;
		case LEAVE:
			clientlimit_leave(l, st->uid, st->n);
			break;
		case CHARGE:
			r = clientlimit_charge(l, st->uid, st->n);
			break;
		case LEFT:
			if (clientlimit_bytes_left(l, st->uid) != st->n)
				fail_msg(
				    "%s, step %zu: %llu bytes left", what, i,
				    (unsigned long long)clientlimit_bytes_left(
					l, st->uid));
			break;
		case TOTAL:
			if (l->total != st->n)
				fail_msg("%s, step %zu: total %u", what, i,
					 l->total);
			break;
		}
		if (r != st->want)
			fail_msg("%s, step %zu, time %u: %d, want %d", what, i,
				 t, r, st->want);
	}
}

static void test_cases(void **state)
{
	(void)state;
	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		struct clientlimit l;

		memset(&l, 0, sizeof(l));
		clientlimit_configure(&l, MAXC, PERUID, RESERVE, BYTES, SLURM);
		for (size_t i = 0; i < ARRAY_SIZE(cases[c].steps); i++) {
			if (cases[c].steps[i].op == STOP)
				break;
			run_step(&l, &cases[c].steps[i], cases[c].what, i);
		}
		clientlimit_free(&l);
	}
}

/* Many users come and go: the table of uids stays as large as the users
 * that hold connections, and every slot comes back. */
static void test_many_users(void **state)
{
	struct clientlimit l;

	(void)state;
	memset(&l, 0, sizeof(l));
	clientlimit_configure(&l, 1000, 1, 1, BYTES, SLURM);
	for (uid_t u = 2000; u < 3000; u++)
		assert_int_equal(clientlimit_admit(&l, u), 0);
	assert_int_equal(l.n, 1000);
	assert_int_equal(clientlimit_admit(&l, 1), -EMFILE);
	assert_int_equal(clientlimit_admit(&l, 0), 0);
	for (uid_t u = 2999; u >= 2000; u--)
		clientlimit_leave(&l, u, 0);
	clientlimit_leave(&l, 0, 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.total, 0);
	assert_int_equal(l.users, 0);
	assert_int_equal(l.refused, 1);
	clientlimit_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_many_users),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
