# Included into llama-cpp-python's top-level CMake project by packaging/install_llama.sh for a
# portable build (CMAKE_PROJECT_llama_cpp_INCLUDE). With GGML_BACKEND_DL and
# GGML_CPU_ALL_VARIANTS, llama.cpp builds one CPU backend per x86/ARM instruction-set level as a
# loadable module (ggml-cpu-haswell, ggml-cpu-skylakex, ...) and picks the best at run time, but
# llama-cpp-python installs only the targets it knows by name (ggml-cpu, ggml-cuda, ...). This
# installs the variants beside libllama, at the end of the configure step when they all exist.
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _librarian_install_cpu_variants)

function(_librarian_install_cpu_variants)
    get_property(ggml_targets DIRECTORY "${CMAKE_SOURCE_DIR}/vendor/llama.cpp/ggml/src"
                 PROPERTY BUILDSYSTEM_TARGETS)
    foreach(target IN LISTS ggml_targets)
        get_target_property(kind ${target} TYPE)
        if(target MATCHES "^ggml-cpu-" AND kind MATCHES "^(MODULE|SHARED)_LIBRARY$")
            message(STATUS "librarian: installing the CPU variant ${target}")
            set_target_properties(${target} PROPERTIES
                INSTALL_RPATH "$ORIGIN" BUILD_WITH_INSTALL_RPATH TRUE)
            install(TARGETS ${target}
                    LIBRARY DESTINATION "${SKBUILD_PLATLIB_DIR}/llama_cpp/lib"
                    RUNTIME DESTINATION "${SKBUILD_PLATLIB_DIR}/llama_cpp/lib")
        endif()
    endforeach()
endfunction()
