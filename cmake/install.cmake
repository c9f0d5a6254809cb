# Installation: library (shared + static), headers, pkg-config file and a
# CMake package so that find_package(Laconic) gives Laconic::laconic.
include(CMakePackageConfigHelpers)

set(LC_PUBLIC_HEADERS ${PROJECT_SOURCE_DIR}/include/laconic.h)
if(LC_WITH_MPI)
  list(APPEND LC_PUBLIC_HEADERS ${PROJECT_SOURCE_DIR}/include/laconic_mpi.h)
endif()

install(TARGETS laconic laconic_static EXPORT LaconicTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${LC_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# The .pc file finds its prefix relative to itself (${pcfiledir}), so a tree
# installed with `cmake --install --prefix X` or moved afterwards still works.
file(RELATIVE_PATH LC_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" LC_PC_TO_PREFIX "${LC_PC_TO_PREFIX}")
set(LC_PC_REQUIRES_PRIVATE "Requires.private: libzstd")
if(LC_WITH_MPI)
  # laconic_mpi.h includes <mpi.h>: users of it need MPI's include path.
  pkg_check_modules(LC_OMPI_PC QUIET ompi-c)
  pkg_check_modules(LC_MPICH_PC QUIET mpich)
  if(LC_OMPI_PC_FOUND)
    set(LC_PC_REQUIRES_PRIVATE "Requires.private: libzstd ompi-c")
  elseif(LC_MPICH_PC_FOUND)
    set(LC_PC_REQUIRES_PRIVATE "Requires.private: libzstd mpich")
  endif()
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/laconic.pc.in ${PROJECT_BINARY_DIR}/laconic.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/laconic.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(EXPORT LaconicTargets NAMESPACE Laconic::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Laconic)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/LaconicConfig.cmake.in
  ${PROJECT_BINARY_DIR}/LaconicConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Laconic)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/LaconicConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/LaconicConfig.cmake
  ${PROJECT_BINARY_DIR}/LaconicConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Laconic)
