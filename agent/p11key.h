/*
 * The agent's key in a PKCS#11 token: an EC P-256 private key named by an
 * RFC 7512 URI (token attributes + object=LABEL), its public half read
 * from the public key object with the same label, signatures through
 * common/p11 (C_Sign with CKM_ECDSA over a SHA-256 digest).
 */
#ifndef AAM_AGENT_P11KEY_H
#define AAM_AGENT_P11KEY_H

#include <stddef.h>
#include <stdint.h>

struct agent_p11;

/*
 * Opens the token of URI with MODULE (path or p11-kit name; NULL: the
 * URI's module-path or module-name), logs in with the PIN in PIN_FILE
 * (NULL: the URI's pin-source), and finds the key pair.  MSG receives a
 * reason without any secret.
 */
int agent_p11_open(const char *uri, const char *module, const char *pin_file,
                   struct agent_p11 **out, char *msg, size_t msglen);
void agent_p11_close(struct agent_p11 *k);
void agent_p11_key_xy(const struct agent_p11 *k, uint8_t x[32], uint8_t y[32]);
int agent_p11_sign(struct agent_p11 *k, const uint8_t digest[32], uint8_t sig[64], char *msg,
                   size_t msglen);

#endif /* AAM_AGENT_P11KEY_H */
