/*
 * test_secret.c - the programs' secret flag values (examples/common/secret.c): env:NAME and
 * @FILE read where they say, a missing variable or file refused, a literal secret taken with a
 * warning, and which keys and URLs count as secrets.
 */
#include "../../examples/common/secret.c"

#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>

/* Calls flag_value() with stderr captured into @p err. */
static char *value_and_messages(const char *value, int secret, char *err, size_t errsz)
{
    char path[] = "/tmp/ue-secret-err-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    assert_true(fd >= 0);
    fflush(stderr);
    dup2(fd, 2);
    char *v = flag_value("prog", "--flag", value, secret);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, err, errsz - 1, 0);
    err[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return v;
}

static void test_secret_values_from_env_and_file(void **state)
{
    (void)state;
    char err[1024], *dir = tu_tempdir("ue-secret"), path[600], at[610];
    setenv("UE_TEST_SECRET", "from-env", 1);
    char *v = value_and_messages("env:UE_TEST_SECRET", 1, err, sizeof(err));
    assert_string_equal(v, "from-env");
    assert_string_equal(err, ""); /* nothing to warn about */
    free(v);
    unsetenv("UE_TEST_SECRET");
    assert_null(value_and_messages("env:UE_TEST_SECRET", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "UE_TEST_SECRET is not set"));

    snprintf(path, sizeof(path), "%s/pw", dir);
    snprintf(at, sizeof(at), "@%s", path);
    FILE *f = fopen(path, "w");
    fputs("from-file\r\nsecond line\n", f);
    fclose(f);
    chmod(path, 0600);
    v = value_and_messages(at, 1, err, sizeof(err));
    assert_string_equal(v, "from-file"); /* the first line, without its line end */
    assert_string_equal(err, "");
    free(v);
    chmod(path, 0644);
    v = value_and_messages(at, 1, err, sizeof(err));
    assert_string_equal(v, "from-file");
    assert_non_null(strstr(err, "open to group or others (mode 644)"));
    free(v);
    unlink(path);
    assert_null(value_and_messages(at, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read"));

    v = value_and_messages("hunter2", 1, err, sizeof(err));
    assert_string_equal(v, "hunter2");
    assert_non_null(strstr(err, "warning: --flag: a secret on the command line is visible"));
    assert_null(strstr(err, "hunter2"));
    free(v);
    v = value_and_messages("events.{type}", 0, err, sizeof(err));
    assert_string_equal(v, "events.{type}");
    assert_string_equal(err, "");
    free(v);
    tu_rmrf(dir);
    free(dir);
}

static void test_secret_keys_and_urls(void **state)
{
    (void)state;
    assert_true(secret_key("kafka.sasl.password"));
    assert_true(secret_key("kafka.ssl.key.password"));
    assert_true(secret_key("kafka.sasl.oauthbearer.client.secret"));
    assert_true(secret_key("http.api.key"));
    assert_false(secret_key("kafka.bootstrap.servers"));
    assert_false(secret_key("topic.template"));
    assert_true(secret_in_url("postgres://u:pw@h/db"));
    assert_true(secret_in_url("postgres://u@h/db?sslmode=require&password=pw"));
    assert_true(secret_in_url("clickhouse://h/db?access_token=t"));
    assert_false(secret_in_url("postgres://u@h/db?sslmode=require"));
    assert_false(secret_in_url("sqlite:/var/lib/events.db"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_values_from_env_and_file),
        cmocka_unit_test(test_secret_keys_and_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
