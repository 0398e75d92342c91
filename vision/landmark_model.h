#pragma once

/// \file
/// `LandmarkModel`: dlib's 68-point shape predictor (Kazemi & Sullivan 2014:
/// 15 cascades of 500 regression trees) read from dlib's model file and held
/// flat. Its answers are dlib's `shape_predictor`'s, point for point (the
/// same features, comparisons and sums in the same order; tested against
/// dlib). Only the layout differs: dlib keeps each of the 120,000 leaves (136
/// floats) in an allocation of its own, reached through three dependent
/// pointer loads, so a face read cold (the daemon's case: 67 ms between
/// frames) waits on memory tree after tree. Here each cascade's splits and
/// leaves are two arrays: the 500 leaves a face lands in are found from the
/// splits first, then summed in tree order with the next leaves prefetched
/// (docs/vision.md, docs/performance.md). dlib stays inside the .cpp.

#include <memory>
#include <string>
#include <variant>

#include "vision/signals.h"

namespace dmsd {

struct LumaView;

class LandmarkModel {
public:
    /// Reads the dlib shape predictor at \a path. The error names the path:
    /// missing or unreadable (landmarkModelProblem), not a dlib shape
    /// predictor (with dlib's reason), or not of 68 landmarks.
    static std::variant<std::shared_ptr<const LandmarkModel>, std::string>
    load(const std::string& path);

    ~LandmarkModel();
    LandmarkModel(const LandmarkModel&) = delete;
    LandmarkModel& operator=(const LandmarkModel&) = delete;

    /// The 68 landmarks of the face in \a box (whole pixels, as the
    /// detector gives them) of \a luma, in \a luma's pixels. Const and
    /// thread-safe: one model serves every analyzer of the process.
    FaceLandmarks predict(const LumaView& luma, const FaceBox& box) const;

    struct Data;

private:
    explicit LandmarkModel(std::unique_ptr<Data> data);
    std::unique_ptr<Data> data_;
};

} // namespace dmsd
