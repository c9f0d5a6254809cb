# The Python package's tests (tests/python): one ctest entry per case, each
# case run on its own ranks by tests/python/harness.py under the interpreter
# that imports torch (LC_PYTHON, python/CMakeLists.txt). They load the shared
# library of this build, so the sanitizer passes (label nosan) leave them out.
add_executable(lc_layout ${CMAKE_CURRENT_SOURCE_DIR}/python/layout.c)
target_link_libraries(lc_layout PRIVATE laconic)

set(_lc_py_ok FALSE)
if(LC_PYTHON)
  execute_process(COMMAND ${LC_PYTHON} -c "import torch, numpy, torch.distributed as d; assert d.is_available()"
                  RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
  if(_rc EQUAL 0)
    set(_lc_py_ok TRUE)
  endif()
endif()
if(NOT _lc_py_ok)
  # Not a silent skip: the suite fails and says what to install.
  add_test(NAME python.MISSING_TORCH COMMAND sh -c
    "echo 'no python3 that imports torch and numpy (${LC_PYTHON}): run scripts/install-deps.sh (python3-torch, python3-numpy)' >&2; exit 1")
  set_tests_properties(python.MISSING_TORCH PROPERTIES LABELS "python;nosan")
  return()
endif()

set(_lc_py_env
  "PYTHONPATH=${PROJECT_BINARY_DIR}/python"
  "LC_LAYOUT_BIN=$<TARGET_FILE:lc_layout>"
  "LC_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
foreach(file test_package test_torch test_example test_training)
  set(_src ${CMAKE_CURRENT_SOURCE_DIR}/python/${file}.py)
  if(NOT EXISTS ${_src})
    continue()
  endif()
  # A case is a function "def NAME(rank, size):" under @case (harness.py);
  # read from the source, so listing needs neither torch nor the library.
  file(STRINGS ${_src} _defs REGEX "^def [a-z][a-z0-9_]*\\(rank, size\\):")
  set(_cases "")
  foreach(d ${_defs})
    string(REGEX REPLACE "^def ([a-z0-9_]+).*" "\\1" c "${d}")
    list(APPEND _cases ${c})
  endforeach()
  foreach(c ${_cases})
    add_test(NAME python.${file}.${c} COMMAND ${LC_PYTHON} ${_src} ${c})
    set_tests_properties(python.${file}.${c} PROPERTIES TIMEOUT 180
      LABELS "python;multiprocess;nosan" ENVIRONMENT "${_lc_py_env}")
  endforeach()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_src})
endforeach()
