# Writes OUT: a C file holding the bytes of IN as `const char NAME[]` (with a
# NUL after them) and `const size_t NAME_len`. Run by metronome_embed().
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* Generated from ${IN} by cmake/embed.cmake. */\n#include <stddef.h>\n"
  "const char ${NAME}[] = {${bytes} 0};\nconst size_t ${NAME}_len = ${len};\n")
