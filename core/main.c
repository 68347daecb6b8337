/* metronome's entry point: everything happens in the command line module. */
#include "cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
