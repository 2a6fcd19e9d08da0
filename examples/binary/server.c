/* A tiny HTTP server in C: the prebuilt-executable example. Build it with
 *   gcc -O2 -o server server.c
 * and deploy the directory; Spread ships the binary with the libraries it links. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    const char *port = getenv("PORT");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port ? atoi(port) : 8080)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 64) < 0) {
        perror("listen");
        return 1;
    }
    printf("listening on :%s\n", port ? port : "8080");
    fflush(stdout);
    const char *body = "Hello from a binary on Spread!\n";
    char reply[256];
    snprintf(reply, sizeof reply,
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             strlen(body), body);
    for (;;) {
        int client = accept(fd, 0, 0);
        if (client < 0) continue;
        char buf[4096];
        (void)read(client, buf, sizeof buf);
        (void)write(client, reply, strlen(reply));
        close(client);
    }
}
