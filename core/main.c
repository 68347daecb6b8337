/* metronome's entry point: everything happens in the command line module.
 * Files metronome creates (ledgers, archives, their -wal and -shm) hold
 * payloads and tokens, so they are private to their owner from the start. */
#include "cli.h"

#include <sys/stat.h>

int main(int argc, char **argv)
{
    umask(077);
    return cli_main(argc, argv);
}
