#!/bin/sh
# Regenerates loadavg/bpf/tasks.bpf.o, the BPF task iterator that the "bpf"
# load counter embeds (go:embed), from loadavg/bpf/tasks.bpf.c. The object
# is committed so that building cgprocfs needs no clang; run this after
# editing the C source and commit both.
# Needs: apt-get install -y clang llvm libbpf-dev
set -eu
cd "$(dirname "$0")/../loadavg/bpf"
# -g: the BTF that CO-RE relocations need. The multiarch include dir holds
# asm/types.h for linux/types.h. The prefix map keeps the build directory
# out of the object, so it is the same wherever it is built.
clang -O2 -g -target bpf -Wall -Werror \
	-I"/usr/include/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)" \
	-fdebug-prefix-map="$PWD"=. \
	-c tasks.bpf.c -o tasks.bpf.o
echo "wrote loadavg/bpf/tasks.bpf.o"
