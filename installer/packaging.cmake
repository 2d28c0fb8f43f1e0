# Install layout (GNUInstallDirs under CMAKE_INSTALL_PREFIX, /usr for the package) and the Debian
# package (CPack DEB): programs in bin/, the SentencePiece shim in lib/hone/ (where spm_tokenizer
# looks beside ../lib/hone), the desktop entry, icons, AppStream metadata, man pages and the
# Debian documentation files. installer/build-package.sh drives it.
# SPDX-License-Identifier: GPL-3.0-or-later
include(GNUInstallDirs)

# The programs keep the run path to OpenBLAS's OpenMP build that the build gives them
# (core/CMakeLists.txt: 1216 against 982 tokens/s for the system's pthread build), which CMake
# would otherwise strip at install; lintian's custom-library-search-path is overridden for it.
set(_programs hone-cli)
if(TARGET hone)
  list(APPEND _programs hone)
endif()
if(HONE_OPENMP_BLAS AND EXISTS "${HONE_OPENMP_BLAS}")
  get_filename_component(_blas_dir "${HONE_OPENMP_BLAS}" DIRECTORY)
  set_target_properties(${_programs} PROPERTIES INSTALL_RPATH "${_blas_dir}")
endif()
install(FILES ${CMAKE_CURRENT_LIST_DIR}/lintian-overrides RENAME hone DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides)
install(TARGETS ${_programs} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET hone_spm)
  install(TARGETS hone_spm LIBRARY DESTINATION lib/hone)
endif()

set(_res ${PROJECT_SOURCE_DIR}/resources)
install(FILES ${_res}/io.github.hone.Hone.desktop DESTINATION ${CMAKE_INSTALL_DATADIR}/applications)
install(FILES ${_res}/io.github.hone.Hone.metainfo.xml DESTINATION ${CMAKE_INSTALL_DATADIR}/metainfo)
install(FILES ${_res}/icons/hone.svg DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/scalable/apps)
foreach(_n 16 24 32 48 64 128 256)
  install(FILES ${_res}/icons/hicolor/${_n}x${_n}/apps/hone.png DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/${_n}x${_n}/apps)
endforeach()

# Man pages and the changelog, compressed as Debian policy wants them (gzip -9n: no name or time,
# so that the package is reproducible).
set(_gz_dir ${CMAKE_BINARY_DIR}/installer)
set(_gz_outputs)
foreach(_src man/hone.1 man/hone-cli.1 changelog)
  get_filename_component(_name ${_src} NAME)
  set(_out ${_gz_dir}/${_name}.gz)
  if(_name STREQUAL "changelog")
    set(_out ${_gz_dir}/changelog.Debian.gz)
  endif()
  add_custom_command(OUTPUT ${_out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_gz_dir}
    COMMAND sh -c "gzip -9n -c '${CMAKE_CURRENT_LIST_DIR}/${_src}' > '${_out}'"
    DEPENDS ${CMAKE_CURRENT_LIST_DIR}/${_src} VERBATIM)
  list(APPEND _gz_outputs ${_out})
endforeach()
add_custom_target(hone_docs_gz ALL DEPENDS ${_gz_outputs})
install(FILES ${_gz_dir}/hone.1.gz ${_gz_dir}/hone-cli.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${_gz_dir}/changelog.Debian.gz ${CMAKE_CURRENT_LIST_DIR}/copyright
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/hone)

# The Debian package. Library dependencies come from dpkg-shlibdeps (the NEEDED entries of the
# programs and the SentencePiece shim); what is found another way is declared by name: the
# OpenBLAS OpenMP build the programs' run path puts ahead of libblas.so.3, and Qt's platform
# plugins the desktop app needs to open a window.
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "hone")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_DEBIAN_PACKAGE_RELEASE "1")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGE_CONTACT "Hone developers <hone@users.noreply.github.com>")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "workbench for fine-tuning large language models")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "Hone puts the fine-tuning loop in one native program: import and
check datasets, label preference pairs by keyboard, train Llama-family
models (Llama, Mistral, Qwen, Gemma, Phi-3, SmolLM2) with LoRA, QLoRA or
full fine-tuning, DPO, ORPO, KTO, reward models, GRPO and PPO on libtorch
with live plots and exact resume, compare runs, and export PEFT adapters,
merged models, GGUF and Ollama models. hone-cli runs the same core headless.")
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/hone/hone")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${CMAKE_INSTALL_PREFIX}/lib/hone")
set(_deps "libopenblas0-openmp")
if(TARGET hone)
  string(APPEND _deps ", qt6-qpa-plugins")
endif()
set(CPACK_DEBIAN_PACKAGE_DEPENDS "${_deps}")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3-torch")
set(CPACK_STRIP_FILES ON)
include(CPack)
