# Locate the static, CPU-only llama.cpp that scripts/setup.sh builds into the user cache, or the
# install prefix given with -DLLAMA_CPP_DIR=. Defines the imported target ef::llama.
set(_ef_default_llama "$ENV{HOME}/.cache/edgefleet/llama.cpp-3.22.1/prefix")
if(DEFINED ENV{XDG_CACHE_HOME})
  set(_ef_default_llama "$ENV{XDG_CACHE_HOME}/edgefleet/llama.cpp-3.22.1/prefix")
endif()
if(DEFINED ENV{EDGEFLEET_CACHE})
  set(_ef_default_llama "$ENV{EDGEFLEET_CACHE}/llama.cpp-3.22.1/prefix")
endif()
set(LLAMA_CPP_DIR "${_ef_default_llama}" CACHE PATH "llama.cpp install prefix (include/llama.h, lib/libllama.a)")

find_path(LLAMA_INCLUDE_DIR llama.h PATHS ${LLAMA_CPP_DIR}/include NO_DEFAULT_PATH)
set(_ef_llama_libs llama ggml ggml-cpu ggml-base)
set(LLAMA_LIBRARIES "")
foreach(lib ${_ef_llama_libs})
  find_library(LLAMA_LIB_${lib} NAMES lib${lib}.a ${lib}
    PATHS ${LLAMA_CPP_DIR}/lib ${LLAMA_CPP_DIR}/lib64 NO_DEFAULT_PATH)
  if(NOT LLAMA_LIB_${lib})
    message(FATAL_ERROR "llama.cpp: lib${lib} not found under ${LLAMA_CPP_DIR}. "
                        "Run scripts/setup.sh, or pass -DLLAMA_CPP_DIR=<llama.cpp install prefix>.")
  endif()
  list(APPEND LLAMA_LIBRARIES ${LLAMA_LIB_${lib}})
endforeach()
if(NOT LLAMA_INCLUDE_DIR)
  message(FATAL_ERROR "llama.cpp: llama.h not found under ${LLAMA_CPP_DIR}/include. "
                      "Run scripts/setup.sh, or pass -DLLAMA_CPP_DIR=<llama.cpp install prefix>.")
endif()
set(LLAMA_BIN_DIR ${LLAMA_CPP_DIR}/bin)
set(LLAMA_SHARE_DIR ${LLAMA_CPP_DIR}/share/llama.cpp)
if(EXISTS ${LLAMA_CPP_DIR}/.edgefleet-built)
  file(READ ${LLAMA_CPP_DIR}/.edgefleet-built _ef_llama_desc)
  string(STRIP "${_ef_llama_desc}" _ef_llama_desc)
else()
  set(_ef_llama_desc "llama.cpp at ${LLAMA_CPP_DIR}")
endif()
message(STATUS "edgefleet: using ${_ef_llama_desc}")

add_library(ef_llama INTERFACE)
target_include_directories(ef_llama INTERFACE ${LLAMA_INCLUDE_DIR})
# Static archives depend on each other in this order; the C++ runtime comes with the CXX linker.
target_link_libraries(ef_llama INTERFACE ${LLAMA_LIBRARIES} Threads::Threads m dl stdc++)
add_library(ef::llama ALIAS ef_llama)
