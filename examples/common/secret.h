/*
 * secret.h - values of the programs' command-line flags that may be secrets.
 *
 * Whatever is on a command line is visible to every local user (ps, /proc/PID/cmdline), so a
 * flag's value may instead say where to read it: "env:NAME" takes the environment variable
 * NAME, "@PATH" the first line of the file PATH. A secret given literally is still taken, with
 * a warning that names the better ways.
 */
#ifndef UE_EXAMPLES_SECRET_H
#define UE_EXAMPLES_SECRET_H

/* Whether configuration key @p key holds a secret: a password, a token, a private key, an API
 * key (the same words the libraries mask in their dumps). */
int secret_key(const char *key);

/* Whether @p url carries a credential: a password in its userinfo, or a query parameter whose
 * name holds pass, pwd, secret, token or key. */
int secret_in_url(const char *url);

/*
 * The value of flag @p flag (as named in messages) given as @p value: read from the
 * environment or a file when it says so, else @p value itself, with a warning on stderr when
 * @p secret. Returns a malloc'd string, or NULL after printing why (the variable is not set,
 * the file cannot be read). @p prog prefixes the messages.
 */
char *flag_value(const char *prog, const char *flag, const char *value, int secret);

#endif
