#include "tests/lib/testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *
aam_test_mkdtemp(const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	size_t n = strlen(tmp) + strlen(prefix) + 16;
	char *path = malloc(n);
	if (path == NULL)
		return NULL;
	snprintf(path, n, "%s/%s.XXXXXX", tmp, prefix);
	if (mkdtemp(path) == NULL) {
		free(path);
		return NULL;
	}
	return path;
}

void
aam_test_rmtree(const char *path)
{
	/* Only folders this helper made: a guard against a bad argument. */
	if (path == NULL || strstr(path, ".") == NULL || strncmp(path, "/", 1) != 0 ||
	    strchr(path, '\'') != NULL)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
		_exit(127);
	}
	if (pid > 0) {
		int st;
		waitpid(pid, &st, 0);
	}
}

int
aam_test_write_file(const char *path, const void *data, size_t len, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode ? mode : 0600);
	if (fd < 0)
		return -1;
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return close(fd);
}

char *
aam_test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf != NULL) {
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	if (buf != NULL) {
		buf[n] = 0;
		if (len != NULL)
			*len = n;
	}
	return buf;
}

int
aam_test_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	int port = -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

char *
aam_test_source_path(const char *rel)
{
	const char *top = getenv("AAM_SOURCE_DIR");
	if (top == NULL)
		top = ".";
	size_t n = strlen(top) + strlen(rel) + 2;
	char *p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s", top, rel);
	return p;
}

int
aam_test_have_program(const char *name)
{
	const char *path = getenv("PATH");
	if (path == NULL)
		return 0;
	char *copy = strdup(path);
	if (copy == NULL)
		return 0;
	int found = 0;
	char *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char full[4096];
		snprintf(full, sizeof(full), "%s/%s", dir, name);
		found = access(full, X_OK) == 0;
	}
	free(copy);
	return found;
}

int
aam_test_sh(char **out, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (out != NULL)
		*out = NULL;
	if (w < 0 || (size_t)w >= sizeof(cmd))
		return -1;
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	size_t cap = 4096, len = 0, n;
	char *b = malloc(cap);
	char chunk[4096];
	while (b != NULL && (n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
		if (len + n + 1 > cap && cap < (16u << 20)) {
			size_t nc = cap;
			while (nc < len + n + 1 && nc < (16u << 20))
				nc *= 2;
			char *nb = realloc(b, nc);
			if (nb == NULL) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap = nc;
		}
		if (len + n + 1 <= cap) {
			memcpy(b + len, chunk, n);
			len += n;
		}
	}
	int st = pclose(p);
	if (b != NULL)
		b[len] = '\0';
	if (out != NULL)
		*out = b;
	else
		free(b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
