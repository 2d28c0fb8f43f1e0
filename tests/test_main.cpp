// main() of every core and CLI test executable: picks OpenBLAS's kernel set as the programs do
// (tune_blas_kernel may re-execute) and
// threads, then runs GoogleTest.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include "common/runtime.h"

int main(int argc, char** argv) {
  hone::tune_blas_kernel(argv);
  hone::init_runtime();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
