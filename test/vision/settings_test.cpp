#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "vision/settings.h"

using namespace dmsd;

TEST_CASE("the landmark model file check names the path and what is wrong", "[vision][settings]") {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("dmsd-vision-settings-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto missing = (dir / "missing.dat").string();
    CHECK(landmarkModelProblem(missing) ==
          "landmark model \"" + missing +
              "\" does not exist (Debian package libdlib-data installs "
              "/usr/share/dlib/shape_predictor_68_face_landmarks.dat)");
    CHECK(landmarkModelProblem(dir.string()) ==
          "landmark model \"" + dir.string() + "\" is not a regular file");
    const auto empty = (dir / "empty.dat").string();
    std::ofstream(empty).close();
    CHECK(landmarkModelProblem(empty) == "landmark model \"" + empty + "\" is empty");
    const auto some = (dir / "some.dat").string();
    std::ofstream(some) << "x";
    CHECK_FALSE(landmarkModelProblem(some));
    if (::geteuid() != 0) { // root reads any file
        std::filesystem::permissions(some, std::filesystem::perms::none);
        CHECK(landmarkModelProblem(some) ==
              "landmark model \"" + some + "\" cannot be read: Permission denied");
    }
    CHECK(landmarkModelProblem("") == "no landmark model file given");
    std::filesystem::remove_all(dir);
}
