# Cross-compiling for 64-bit ARM (aarch64) with Debian's cross toolchain (gcc-aarch64-linux-gnu)
# against the arm64 multiarch -dev packages (libzmq3-dev:arm64, ...). Used for both llama.cpp
# (scripts/setup.sh --arch arm64) and edgefleet (EF_ARCH=arm64 scripts/build.sh).
# Tests run under qemu-user (qemu-aarch64); binfmt_misc is not needed.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Debian's cross gcc already searches /usr/include/aarch64-linux-gnu and /usr/lib/aarch64-linux-gnu;
# this makes CMake's own find_library() look there first, and never in the amd64 directories.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)  # protoc-c, git: the host's
# pkg-config reads the arm64 .pc files only (the host's pkgconf has no aarch64 wrapper on Debian 12).
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
# ctest (and try_run) run the arm64 binaries through qemu-user. The arm64 loader from libc6:arm64
# finds the multiarch libraries in /usr/lib/aarch64-linux-gnu, so no -L sysroot is needed.
find_program(EF_QEMU_AARCH64 qemu-aarch64)
if(EF_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${EF_QEMU_AARCH64})
endif()
