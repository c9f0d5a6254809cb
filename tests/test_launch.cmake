# lcrun, the example and lc_comm_init_mpi, driven by a shell script.
if(TARGET lcrun AND TARGET allreduce_hello)
  set(_mpi_test "")
  if(LC_WITH_MPI)
    add_executable(test_mpi_init test_mpi_init.c)
    target_link_libraries(test_mpi_init PRIVATE laconic MPI::MPI_C)
    set(_mpi_test $<TARGET_FILE:test_mpi_init>)
  endif()
  add_test(NAME test_launch COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_launch.sh
           $<TARGET_FILE:lcrun> $<TARGET_FILE:allreduce_hello> ${_mpi_test})
  set_tests_properties(test_launch PROPERTIES TIMEOUT 300 LABELS "launch;multiprocess")
endif()
