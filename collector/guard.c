/* guard.c - abuse resistance that keeps nothing about persons.
 *
 * Per-address limits: token buckets keyed by a keyed hash of the client
 * address (the key is random per process, so the table cannot be turned back
 * into addresses, and it lives in memory only). Numbers, tuned so that a
 * campus behind one NAT address is never locked out:
 *   code failures   burst 60, then 1 a second: a mistyping hall stays well
 *                   inside; a guesser gets ~86,000 tries a day against 2^75
 *   open ballots    burst 3,000, then 20 a second (72,000 an hour): a whole
 *                   campus voting at once from one address fits; a script
 *                   stuffing a poster round does not
 * Form tokens: each rendered form carries a signed, timed nonce; a POST must
 * bring one that this process has not seen spent, so a page cannot be posted
 * twice, nor built on another site. Spent nonces are kept in memory for the
 * token's lifetime (6 hours); a restart forgets them, which a vote cookie
 * (open rounds) or the code itself (code rounds) still covers.
 * Vote cookies: an open round's browser gets a signed "voted for this unit
 * in this round" flag, the same for every voter, so it identifies nobody.
 * All of this runs on the handler thread only: no locks. */
#include "col.h"

#include <arpa/inet.h>
#include <math.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "common/fmt.h"
#include "common/http.h"
#include "common/rnd.h"
#include "common/str.h"

enum {
	BUCKETS = 1 << 16,
	NONCES = 1 << 18,
	PROBE = 16,
	NONCE_LEN = 9,
	MAC_LEN = 12,
	TOKEN_MAC_FULL = crypto_generichash_BYTES_MIN,   /* 16, cut to MAC_LEN */
	TOKEN_BYTES = NONCE_LEN + 4 + MAC_LEN,
	TOKEN_TTL = 6 * 3600,
};

static struct {
	double burst, per_second;
} limit_rates[] = {
	[COL_LIMIT_CODE_FAILURES] = { 60, 1 },
	[COL_LIMIT_OPEN_BALLOTS] = { 3000, 20 },
};

typedef struct bucket {
	uint64_t key;               /* 0: free */
	double tokens, last;
} bucket;

static bucket buckets[2][BUCKETS];
static struct {
	uint64_t nonce;             /* 0: free */
	uint32_t at;                /* 0: unspent again */
} spent[NONCES];
static unsigned char addr_key[crypto_shorthash_KEYBYTES];
/* MAC states with their keys already loaded. A form token is made for every
 * form shown and checked for every ballot: keyed BLAKE2b (libsodium's code
 * is vectorised) takes about a quarter of the instructions of HMAC-SHA256
 * (portable C). The vote cookie, made once per unit lookup, keeps HMAC. */
static crypto_generichash_state token_mac0;
static crypto_auth_hmacsha256_state cookie_mac0;
static bool trust_proxy, secure_cookies;

static void derive(const unsigned char *secret, const char *label, unsigned char *out)
{
	crypto_auth_hmacsha256(out, (const unsigned char *)label, strlen(label), secret);
}

bool col_limit_set(enum col_limit which, const char *spec)
{
	char burst[32];
	const char *comma = strchr(spec, ',');
	double b, r;
	if (!comma || (size_t)(comma - spec) >= sizeof burst)
		return false;
	str_copy(burst, (size_t)(comma - spec) + 1, spec);
	if (!str_to_double(burst, 1, 1e9, &b) || !str_to_double(comma + 1, 0, 1e9, &r))
		return false;
	limit_rates[which].burst = b;
	limit_rates[which].per_second = r;
	return true;
}

void col_guard_init(const unsigned char *secret, bool proxy, bool secure)
{
	randombytes_buf(addr_key, sizeof addr_key);
	unsigned char key[32];
	derive(secret, "pingyi-form-token-v2", key);
	crypto_generichash_init(&token_mac0, key, sizeof key, TOKEN_MAC_FULL);
	derive(secret, "pingyi-vote-cookie-v1", key);
	crypto_auth_hmacsha256_init(&cookie_mac0, key, sizeof key);
	sodium_memzero(key, sizeof key);
	trust_proxy = proxy;
	secure_cookies = secure;
}

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The client address as a keyed hash; never stored or logged as such. */
static uint64_t address_key(struct MHD_Connection *c)
{
	char addr[INET6_ADDRSTRLEN] = "";
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof addr);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof addr);
	if (trust_proxy && (str_starts(addr, "127.") || strcmp(addr, "::1") == 0)) {
		/* The last X-Forwarded-For entry is the one nginx appended
		 * ($proxy_add_x_forwarded_for); earlier ones, and X-Real-IP unless
		 * nginx sets it, are whatever the client claims. */
		const char *real = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Real-IP");
		const char *fwd = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
		const char *last = fwd ? strrchr(fwd, ',') : NULL;
		const char *from = last ? last + 1 : fwd ? fwd : real;
		if (from) {
			while (*from == ' ')
				from++;
			str_copy(addr, sizeof addr, from);
		}
	}
	unsigned char h[crypto_shorthash_BYTES];
	crypto_shorthash(h, (const unsigned char *)addr, strlen(addr), addr_key);
	uint64_t k;
	memcpy(&k, h, sizeof k);
	return k ? k : 1;
}

/* The address's bucket, refilled to now; a stale one is reused when full. */
static bucket *bucket_for(struct MHD_Connection *c, enum col_limit which)
{
	uint64_t key = address_key(c);
	double now = now_mono();
	bucket *table = buckets[which], *oldest = NULL;
	for (int i = 0; i < PROBE; i++) {
		bucket *b = &table[(key + (uint64_t)i) & (BUCKETS - 1)];
		if (b->key == key || b->key == 0) {
			if (b->key == 0)
				*b = (bucket){ key, limit_rates[which].burst, now };
			oldest = b;
			break;
		}
		if (!oldest || b->last < oldest->last)
			oldest = b;
	}
	if (oldest->key != key)
		*oldest = (bucket){ key, limit_rates[which].burst, now };
	oldest->tokens += (now - oldest->last) * limit_rates[which].per_second;
	if (oldest->tokens > limit_rates[which].burst)
		oldest->tokens = limit_rates[which].burst;
	oldest->last = now;
	return oldest;
}

bool col_limit_take(struct MHD_Connection *c, enum col_limit which)
{
	bucket *b = bucket_for(c, which);
	if (b->tokens < 1)
		return false;
	b->tokens -= 1;
	return true;
}

bool col_limit_empty(struct MHD_Connection *c, enum col_limit which)
{
	return bucket_for(c, which)->tokens < 1;
}

enum MHD_Result col_limited(struct MHD_Connection *c, enum form_lang lang, enum col_limit which)
{
	buf page;
	buf_init(&page, COL_PAGE_MAX);
	if (which == COL_LIMIT_CODE_FAILURES)
		col_page_message(&page, lang, ZH_EN(lang, "尝试次数过多", "Too many attempts"),
			ZH_EN(lang, "来自您所在网络的无效测评码过多。请核对测评码，一分钟后再试。",
				"Too many invalid codes came from your network. Check your code and try again in a minute."));
	else
		col_page_message(&page, lang, ZH_EN(lang, "提交过于频繁", "Too many ballots"),
			ZH_EN(lang, "来自您所在网络的提交过多，请稍后再试。您的评价没有保存。",
				"Too many ballots came from your network. Please try again shortly; yours was not saved."));
	/* Time for one token to come back, in whole seconds (at least 1). */
	double rate = limit_rates[which].per_second;
	char after[32];
	fmt_into(after, sizeof after, "%lld", rate > 0 ? (long long)ceil(1 / rate) : 3600LL);
	return col_send_page(c, 429, &page, (const char *const[]){ "Retry-After", after, NULL });
}

/* ---- form tokens ---- */

static void token_mac(const unsigned char *head, const col_target *t, unsigned char *mac)
{
	unsigned char full[TOKEN_MAC_FULL];
	crypto_generichash_state st = token_mac0;
	crypto_generichash_update(&st, head, NONCE_LEN + 4);
	crypto_generichash_update(&st, (const unsigned char *)t->round, strlen(t->round) + 1);
	crypto_generichash_update(&st, (const unsigned char *)t->unit, strlen(t->unit) + 1);
	crypto_generichash_update(&st, (const unsigned char *)t->code, strlen(t->code));
	crypto_generichash_final(&st, full, sizeof full);
	memcpy(mac, full, MAC_LEN);
}

void col_token_make(const col_target *t, char *out, size_t size)
{
	unsigned char raw[TOKEN_BYTES];
	rnd_bytes(raw, NONCE_LEN);
	uint32_t at = htonl((uint32_t)time(NULL));
	memcpy(raw + NONCE_LEN, &at, 4);
	token_mac(raw, t, raw + NONCE_LEN + 4);
	sodium_bin2base64(out, size, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static uint64_t nonce_of(const char *key)
{
	uint64_t n;
	memcpy(&n, key, sizeof n);
	return n ? n : 1;
}

static bool is_spent(uint64_t n, uint32_t now)
{
	for (int i = 0; i < PROBE; i++) {
		size_t slot = (n + (uint64_t)i) & (NONCES - 1);
		if (spent[slot].nonce == n && spent[slot].at && now - spent[slot].at <= TOKEN_TTL)
			return true;
	}
	return false;
}

enum col_token_check col_token_check(const col_target *t, const char *token, char *key)
{
	unsigned char raw[TOKEN_BYTES + 1], mac[MAC_LEN];
	size_t len = 0;
	if (!token || strlen(token) > 64 ||
			sodium_base642bin(raw, sizeof raw, token, strlen(token), NULL, &len, NULL,
				sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 || len != TOKEN_BYTES)
		return TOKEN_BAD;
	token_mac(raw, t, mac);
	if (sodium_memcmp(mac, raw + NONCE_LEN + 4, MAC_LEN) != 0)
		return TOKEN_BAD;
	uint32_t at;
	memcpy(&at, raw + NONCE_LEN, 4);
	at = ntohl(at);
	uint32_t now = (uint32_t)time(NULL);
	if (at > now + 60 || now - at > TOKEN_TTL)
		return TOKEN_EXPIRED;
	memset(key, 0, 32);
	memcpy(key, raw, NONCE_LEN);
	return is_spent(nonce_of(key), now) ? TOKEN_REPLAYED : TOKEN_OK;
}

void col_token_spend(const char *key)
{
	uint64_t n = nonce_of(key);
	uint32_t now = (uint32_t)time(NULL);
	size_t victim = n & (NONCES - 1);
	for (int i = 0; i < PROBE; i++) {
		size_t slot = (n + (uint64_t)i) & (NONCES - 1);
		if (!spent[slot].nonce || !spent[slot].at || now - spent[slot].at > TOKEN_TTL) {
			victim = slot;
			break;
		}
		if (spent[slot].at < spent[victim].at)
			victim = slot;
	}
	spent[victim].nonce = n;
	spent[victim].at = now;
}

void col_token_unspend(const char *key)
{
	uint64_t n = nonce_of(key);
	for (int i = 0; i < PROBE; i++) {
		size_t slot = (n + (uint64_t)i) & (NONCES - 1);
		if (spent[slot].nonce == n)
			spent[slot].at = 0;
	}
}

/* ---- vote cookies ---- */

void col_cookie_value(col_target *t)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st = cookie_mac0;
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)t->round, strlen(t->round) + 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)t->unit, strlen(t->unit));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2base64(t->vote_cookie, sizeof t->vote_cookie, mac, 16, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool col_cookie_voted(struct MHD_Connection *c, const col_target *t)
{
	char name[16];
	fmt_into(name, sizeof name, "pv_%s", t->token);
	const char *got = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, name);
	const char *want = t->vote_cookie;
	return got && want[0] && strlen(got) == strlen(want) && sodium_memcmp(got, want, strlen(want)) == 0;
}

void col_cookie_make(const col_target *t, char *out, size_t size)
{
	int64_t age = t->closes_at ? t->closes_at - (int64_t)time(NULL) : 180 * 86400;
	if (age < 3600)
		age = 3600;
	fmt_into(out, size, "pv_%s=%s; Path=/u/%s; Max-Age=%lld; HttpOnly; SameSite=Lax%s", t->token, t->vote_cookie,
		t->token, (long long)age, secure_cookies ? "; Secure" : "");
}
