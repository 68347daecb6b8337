/* The command line of SPEC section 6: parses argv and runs one command.
 * Returns the process exit status (0 ok, 2 bad input or config, 1 runtime). */
#ifndef MTR_CLI_H
#define MTR_CLI_H

int cli_main(int argc, char **argv);

#endif
