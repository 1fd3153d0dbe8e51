/*
 * Bounded regular expressions for `when: {param: {regex: ...}}`.
 *
 * A policy regex runs on every matching tool call, on a value the agent
 * chose, so it must not be able to take exponential time (ReDoS) or
 * allocate.  glibc's regexec() does both, so conditions use this small
 * engine instead: the pattern is compiled once, at load, into a Thompson
 * NFA of at most POL_REGEX_MAX_PROG instructions; matching simulates all
 * states at once with two bitsets and a stack on the C stack, which is
 * O(len(subject) * size(program)) with no allocation.
 *
 * The syntax is a subset of POSIX ERE: literals, '.', bracket classes
 * with ranges and negation, \d \w \s (and their negations), escapes of the
 * metacharacters, groups ( ) and (?: ), alternation '|', and the
 * quantifiers * + ? {m} {m,} {m,n} with m, n <= 100.  The whole value must
 * match, so '^' and '$' are accepted only at the two ends, where they
 * change nothing.  Backreferences, lookaround and lazy quantifiers are
 * refused.  Matching works on bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/policy_internal.h"

#define RX_MAX_CLASSES 64
#define RX_MAX_DEPTH   32
#define RX_MAX_REPEAT  100
#define RX_UNSET       0xffffu

enum rx_op { RX_BYTE = 1, RX_ANY, RX_CLASS, RX_SPLIT, RX_JMP, RX_MATCH };

struct rx_inst {
	uint8_t op;
	uint8_t c;
	uint16_t x, y;
};

struct pol_regex {
	struct rx_inst *prog;
	size_t n;
	uint8_t (*cls)[32];
	size_t ncls;
};

struct rxc {
	const char *p;
	size_t len, i;
	struct rx_inst prog[POL_REGEX_MAX_PROG];
	size_t n;
	uint8_t cls[RX_MAX_CLASSES][32];
	size_t ncls;
	/* Scratch for rx_quantify; it never recurses while using it. */
	struct rx_inst frag[POL_REGEX_MAX_PROG];
	int depth;
	char *why;
	size_t whylen;
	bool failed;
};

static bool rx_fail(struct rxc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool
rx_fail(struct rxc *c, const char *fmt, ...)
{
	if (!c->failed && c->why != NULL && c->whylen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->why, c->whylen, fmt, ap);
		va_end(ap);
	}
	c->failed = true;
	return false;
}

static bool
rx_room(struct rxc *c, size_t k)
{
	if (c->n + k > POL_REGEX_MAX_PROG)
		return rx_fail(c,
		               "regex is too large (over %d instructions once repetitions are "
		               "expanded)",
		               POL_REGEX_MAX_PROG);
	return true;
}

static bool
rx_emit(struct rxc *c, uint8_t op, uint8_t ch, uint16_t x, uint16_t y)
{
	if (!rx_room(c, 1))
		return false;
	c->prog[c->n++] = (struct rx_inst){.op = op, .c = ch, .x = x, .y = y};
	return true;
}

/* Jump targets of an instruction that need relocating. */
static bool
rx_has_targets(const struct rx_inst *in)
{
	return in->op == RX_SPLIT || in->op == RX_JMP;
}

/*
 * Inserts one instruction at AT, shifting [AT, n) up by one.  Targets in
 * the shifted region that point at or past AT move with it.
 */
static bool
rx_insert(struct rxc *c, size_t at, struct rx_inst in)
{
	if (!rx_room(c, 1))
		return false;
	memmove(&c->prog[at + 1], &c->prog[at], (c->n - at) * sizeof(c->prog[0]));
	c->n++;
	for (size_t k = at + 1; k < c->n; k++) {
		struct rx_inst *q = &c->prog[k];
		if (!rx_has_targets(q))
			continue;
		if (q->x != RX_UNSET && q->x >= at)
			q->x++;
		if (q->op == RX_SPLIT && q->y != RX_UNSET && q->y >= at)
			q->y++;
	}
	c->prog[at] = in;
	return true;
}

/* Appends a copy of FRAG (LEN instructions that were at FROM). */
static bool
rx_copy(struct rxc *c, const struct rx_inst *frag, size_t len, size_t from)
{
	if (!rx_room(c, len))
		return false;
	size_t to = c->n;
	for (size_t k = 0; k < len; k++) {
		struct rx_inst q = frag[k];
		if (rx_has_targets(&q)) {
			q.x = (uint16_t)(q.x - from + to);
			if (q.op == RX_SPLIT)
				q.y = (uint16_t)(q.y - from + to);
		}
		c->prog[c->n++] = q;
	}
	return true;
}

static int
rx_peek(const struct rxc *c)
{
	return c->i < c->len ? (unsigned char)c->p[c->i] : -1;
}

static bool rx_alt(struct rxc *c);

static void
cls_set(uint8_t *bm, unsigned b)
{
	bm[b >> 3] = (uint8_t)(bm[b >> 3] | (1u << (b & 7)));
}

static void
cls_range(uint8_t *bm, unsigned lo, unsigned hi)
{
	for (unsigned b = lo; b <= hi; b++)
		cls_set(bm, b);
}

/* The \d \w \s families into BM; false if E is not one of them. */
static bool
cls_escape(uint8_t *bm, int e)
{
	uint8_t tmp[32] = {0};
	switch (e) {
	case 'd':
	case 'D':
		cls_range(tmp, '0', '9');
		break;
	case 'w':
	case 'W':
		cls_range(tmp, '0', '9');
		cls_range(tmp, 'a', 'z');
		cls_range(tmp, 'A', 'Z');
		cls_set(tmp, '_');
		break;
	case 's':
	case 'S':
		cls_set(tmp, ' ');
		cls_range(tmp, '\t', '\r');
		break;
	default:
		return false;
	}
	bool neg = e == 'D' || e == 'W' || e == 'S';
	for (int k = 0; k < 32; k++)
		bm[k] = (uint8_t)(bm[k] | (neg ? (uint8_t)~tmp[k] : tmp[k]));
	return true;
}

/* The byte a single-character escape stands for, or -1. */
static int
rx_escape_byte(int e)
{
	switch (e) {
	case 'n':
		return '\n';
	case 't':
		return '\t';
	case 'r':
		return '\r';
	case 'f':
		return '\f';
	case 'v':
		return '\v';
	}
	if (e > 0 && strchr("\\.+*?()[]{}|^$/-", e) != NULL)
		return e;
	return -1;
}

static bool
rx_bad_escape(struct rxc *c, int e)
{
	if (e >= '1' && e <= '9')
		return rx_fail(c, "backreferences (\\%c) are not supported", e);
	if (e < 0)
		return rx_fail(c, "regex ends with a lone backslash");
	if (e >= 0x20 && e < 0x7f)
		return rx_fail(c, "unsupported escape \\%c", e);
	return rx_fail(c, "unsupported escape");
}

static bool
rx_new_class(struct rxc *c, uint8_t **bm)
{
	if (c->ncls >= RX_MAX_CLASSES)
		return rx_fail(c, "regex has more than %d character classes", RX_MAX_CLASSES);
	*bm = c->cls[c->ncls];
	memset(*bm, 0, 32);
	return rx_emit(c, RX_CLASS, 0, (uint16_t)c->ncls++, 0);
}

/* One class member (a byte or an escape) for a bracket expression. */
static bool
rx_class_member(struct rxc *c, uint8_t *bm, int *single)
{
	int ch = rx_peek(c);
	if (ch < 0)
		return rx_fail(c, "unterminated character class");
	c->i++;
	*single = -1;
	if (ch != '\\') {
		*single = ch;
		return true;
	}
	int e = rx_peek(c);
	c->i++;
	if (cls_escape(bm, e))
		return true;
	int b = rx_escape_byte(e);
	if (b < 0)
		return rx_bad_escape(c, e);
	*single = b;
	return true;
}

static bool
rx_class(struct rxc *c)
{
	uint8_t *bm = NULL;
	if (!rx_new_class(c, &bm))
		return false;
	bool neg = false;
	if (rx_peek(c) == '^') {
		neg = true;
		c->i++;
	}
	bool first = true;
	for (;;) {
		int ch = rx_peek(c);
		if (ch < 0)
			return rx_fail(c, "unterminated character class");
		if (ch == ']' && !first) {
			c->i++;
			break;
		}
		first = false;
		int lo;
		if (!rx_class_member(c, bm, &lo))
			return false;
		if (lo >= 0 && rx_peek(c) == '-' && c->i + 1 < c->len && c->p[c->i + 1] != ']') {
			c->i++;
			int hi;
			if (!rx_class_member(c, bm, &hi))
				return false;
			if (hi < 0)
				return rx_fail(c, "a class escape cannot end a range");
			if (hi < lo)
				return rx_fail(c, "character range is out of order");
			cls_range(bm, (unsigned)lo, (unsigned)hi);
		} else if (lo >= 0) {
			cls_set(bm, (unsigned)lo);
		}
	}
	if (neg)
		for (int k = 0; k < 32; k++)
			bm[k] = (uint8_t)~bm[k];
	return true;
}

static bool
rx_atom(struct rxc *c)
{
	int ch = rx_peek(c);
	c->i++;
	switch (ch) {
	case '(': {
		if (rx_peek(c) == '?') {
			if (c->i + 1 < c->len && c->p[c->i + 1] == ':')
				c->i += 2;
			else
				return rx_fail(c, "lookaround and inline flags are not supported");
		}
		if (++c->depth > RX_MAX_DEPTH)
			return rx_fail(c, "regex nests groups deeper than %d", RX_MAX_DEPTH);
		if (!rx_alt(c))
			return false;
		c->depth--;
		if (rx_peek(c) != ')')
			return rx_fail(c, "missing ')'");
		c->i++;
		return true;
	}
	case ')':
		return rx_fail(c, "unbalanced ')'");
	case '[':
		return rx_class(c);
	case '.':
		return rx_emit(c, RX_ANY, 0, 0, 0);
	case '*':
	case '+':
	case '?':
	case '{':
		return rx_fail(c, "quantifier '%c' has nothing to repeat", ch);
	case '^':
	case '$':
		return rx_fail(c,
		               "'%c' is only allowed at the start or end of the regex (the whole "
		               "value must match)",
		               ch);
	case '\\': {
		int e = rx_peek(c);
		c->i++;
		uint8_t tmp[32] = {0};
		if (cls_escape(tmp, e)) {
			uint8_t *bm = NULL;
			if (!rx_new_class(c, &bm) || bm == NULL)
				return false;
			memcpy(bm, tmp, 32);
			return true;
		}
		int b = rx_escape_byte(e);
		if (b < 0)
			return rx_bad_escape(c, e);
		return rx_emit(c, RX_BYTE, (uint8_t)b, 0, 0);
	}
	default:
		return rx_emit(c, RX_BYTE, (uint8_t)ch, 0, 0);
	}
}

static bool
rx_number(struct rxc *c, unsigned *out)
{
	unsigned v = 0;
	size_t start = c->i;
	while (rx_peek(c) >= '0' && rx_peek(c) <= '9') {
		v = v * 10 + (unsigned)(rx_peek(c) - '0');
		c->i++;
		if (v > RX_MAX_REPEAT)
			return rx_fail(c, "repetition count over %d", RX_MAX_REPEAT);
	}
	if (c->i == start)
		return rx_fail(c, "malformed {m,n} repetition");
	*out = v;
	return true;
}

/* Applies a quantifier to the fragment that starts at S. */
static bool
rx_quantify(struct rxc *c, size_t s)
{
	int q = rx_peek(c);
	unsigned min = 0, max = 0; /* max == UINT32_MAX: unbounded */
	switch (q) {
	case '*':
		min = 0, max = UINT32_MAX;
		c->i++;
		break;
	case '+':
		min = 1, max = UINT32_MAX;
		c->i++;
		break;
	case '?':
		min = 0, max = 1;
		c->i++;
		break;
	case '{':
		c->i++;
		if (!rx_number(c, &min))
			return false;
		max = min;
		if (rx_peek(c) == ',') {
			c->i++;
			if (rx_peek(c) == '}')
				max = UINT32_MAX;
			else if (!rx_number(c, &max))
				return false;
		}
		if (rx_peek(c) != '}')
			return rx_fail(c, "malformed {m,n} repetition");
		c->i++;
		if (max < min)
			return rx_fail(c, "repetition {m,n} has n < m");
		break;
	default:
		return true;
	}
	int after = rx_peek(c);
	if (after == '?' || after == '+')
		return rx_fail(c, "lazy and possessive quantifiers are not supported");
	if (after == '*' || after == '{')
		return rx_fail(c, "quantifier follows a quantifier");

	size_t len = c->n - s;
	struct rx_inst *frag = c->frag;
	memcpy(frag, &c->prog[s], len * sizeof(frag[0]));
	c->n = s;
	for (unsigned k = 0; k < min; k++)
		if (!rx_copy(c, frag, len, s))
			return false;
	if (max == UINT32_MAX) {
		/* L: SPLIT L+1, END; frag; JMP L; END: */
		size_t l = c->n;
		if (!rx_emit(c, RX_SPLIT, 0, (uint16_t)(l + 1), RX_UNSET) ||
		    !rx_copy(c, frag, len, s) || !rx_emit(c, RX_JMP, 0, (uint16_t)l, 0))
			return false;
		c->prog[l].y = (uint16_t)c->n;
		return true;
	}
	/* Each optional copy: SPLIT next, END; frag. */
	size_t splits[RX_MAX_REPEAT + 1];
	size_t ns = 0;
	for (unsigned k = min; k < max; k++) {
		splits[ns++] = c->n;
		if (!rx_emit(c, RX_SPLIT, 0, (uint16_t)(c->n + 1), RX_UNSET) ||
		    !rx_copy(c, frag, len, s))
			return false;
	}
	for (size_t k = 0; k < ns; k++)
		c->prog[splits[k]].y = (uint16_t)c->n;
	return true;
}

static bool
rx_concat(struct rxc *c)
{
	for (;;) {
		int ch = rx_peek(c);
		if (ch < 0 || ch == '|' || ch == ')')
			return true;
		if (ch == '$' && c->i + 1 == c->len && c->depth == 0) {
			c->i++;
			return true;
		}
		size_t s = c->n;
		if (!rx_atom(c) || !rx_quantify(c, s))
			return false;
	}
}

static bool
rx_alt(struct rxc *c)
{
	size_t branch = c->n;
	if (!rx_concat(c))
		return false;
	/*
	 * The JMPs that end each branch are chained through their x field
	 * (pointing back at the previous one) until the end is known.  They
	 * lie before every later insertion point, so insertions never move
	 * them.
	 */
	uint16_t chain = RX_UNSET;
	while (rx_peek(c) == '|') {
		c->i++;
		struct rx_inst split = {.op = RX_SPLIT, .x = (uint16_t)(branch + 1), .y = RX_UNSET};
		if (!rx_insert(c, branch, split))
			return false;
		uint16_t j = (uint16_t)c->n;
		if (!rx_emit(c, RX_JMP, 0, chain, 0))
			return false;
		chain = j;
		c->prog[branch].y = (uint16_t)c->n;
		branch = c->n;
		if (!rx_concat(c))
			return false;
	}
	while (chain != RX_UNSET) {
		uint16_t prev = c->prog[chain].x;
		c->prog[chain].x = (uint16_t)c->n;
		chain = prev;
	}
	return true;
}

int
pol_regex_compile(struct pol_arena *a, const char *pat, size_t len, struct pol_regex **out,
                  char *why, size_t whylen)
{
	*out = NULL;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (len > POL_REGEX_MAX_PATTERN) {
		if (why != NULL)
			snprintf(why, whylen, "regex is longer than %d bytes",
			         POL_REGEX_MAX_PATTERN);
		return AAM_E_TOOBIG;
	}
	struct rxc *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return AAM_E_NOMEM;
	c->p = pat;
	c->len = len;
	c->why = why;
	c->whylen = whylen;
	if (len > 0 && pat[0] == '^')
		c->i = 1;
	bool ok = rx_alt(c);
	if (ok && c->i != c->len)
		ok = rx_fail(c, "unbalanced ')'");
	if (ok)
		ok = rx_emit(c, RX_MATCH, 0, 0, 0);
	int rc = AAM_E_PARSE;
	if (ok) {
		struct pol_regex *re = pol_alloc(a, sizeof(*re));
		struct rx_inst *prog = pol_alloc_array(a, c->n, sizeof(*prog));
		uint8_t(*cls)[32] = pol_alloc_array(a, c->ncls ? c->ncls : 1, 32);
		if (re == NULL || prog == NULL || cls == NULL) {
			rc = AAM_E_NOMEM;
		} else {
			memcpy(prog, c->prog, c->n * sizeof(*prog));
			memcpy(cls, c->cls, c->ncls * 32);
			re->prog = prog;
			re->n = c->n;
			re->cls = cls;
			re->ncls = c->ncls;
			*out = re;
			rc = AAM_OK;
		}
	}
	free(c);
	return rc;
}

/* ---- matching --------------------------------------------------------- */

#define RX_WORDS (POL_REGEX_MAX_PROG / 64)

/* Adds PC and everything reachable from it by SPLIT/JMP to SET. */
static void
rx_add(const struct pol_regex *re, uint64_t *set, uint16_t pc, uint16_t *stack)
{
	size_t sp = 0;
	if (set[pc >> 6] & (1ull << (pc & 63)))
		return;
	set[pc >> 6] |= 1ull << (pc & 63);
	stack[sp++] = pc;
	while (sp > 0) {
		const struct rx_inst *in = &re->prog[stack[--sp]];
		uint16_t next[2];
		int nn = 0;
		if (in->op == RX_JMP)
			next[nn++] = in->x;
		else if (in->op == RX_SPLIT)
			next[nn++] = in->y, next[nn++] = in->x;
		for (int k = 0; k < nn; k++) {
			uint16_t t = next[k];
			if (set[t >> 6] & (1ull << (t & 63)))
				continue;
			set[t >> 6] |= 1ull << (t & 63);
			stack[sp++] = t;
		}
	}
}

bool
pol_regex_match(const struct pol_regex *re, const char *s, size_t len)
{
	if (re == NULL || re->n == 0 || re->n > POL_REGEX_MAX_PROG)
		return false;
	uint64_t a[RX_WORDS], b[RX_WORDS];
	uint16_t stack[POL_REGEX_MAX_PROG];
	size_t words = (re->n + 63) / 64;
	uint64_t *cur = a, *nxt = b;
	memset(cur, 0, words * sizeof(uint64_t));
	rx_add(re, cur, 0, stack);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		memset(nxt, 0, words * sizeof(uint64_t));
		bool any = false;
		for (size_t w = 0; w < words; w++) {
			uint64_t bits = cur[w];
			while (bits) {
				unsigned bit = (unsigned)__builtin_ctzll(bits);
				bits &= bits - 1;
				size_t pc = w * 64 + bit;
				const struct rx_inst *in = &re->prog[pc];
				bool hit = false;
				if (in->op == RX_BYTE)
					hit = in->c == ch;
				else if (in->op == RX_ANY)
					hit = true;
				else if (in->op == RX_CLASS)
					hit = (re->cls[in->x][ch >> 3] >> (ch & 7)) & 1;
				if (hit) {
					rx_add(re, nxt, (uint16_t)(pc + 1), stack);
					any = true;
				}
			}
		}
		if (!any)
			return false;
		uint64_t *t = cur;
		cur = nxt;
		nxt = t;
	}
	size_t m = re->n - 1; /* the single MATCH is last */
	return (cur[m >> 6] >> (m & 63)) & 1;
}
