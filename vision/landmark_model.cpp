#include "vision/landmark_model.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>
#include <dlib/serialize.h>
#include <exception>
#include <fstream>
#include <opencv2/core.hpp>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "vision/face_analyzer.h"
#include "vision/settings.h"

namespace dmsd {
namespace {

/// One node of a tree: the difference of two feature pixels against a
/// threshold (dlib's impl::split_feature, 12 bytes instead of 24).
struct Split {
    std::uint32_t idx1 = 0;
    std::uint32_t idx2 = 0;
    float thresh = 0.0F;
};

/// Leaves a cascade's summing loop prefetches ahead of the one it adds: a
/// leaf is 136 floats (9 cache lines), so some memory latencies overlap.
constexpr unsigned kPrefetchAhead = 4;

/// One cascade: where its feature pixels sit relative to the current shape,
/// and its trees, all of the same depth, as two flat arrays.
struct Cascade {
    std::vector<unsigned long> anchorIdx;
    std::vector<dlib::vector<float, 2>> deltas;
    std::size_t trees = 0;
    std::vector<Split> splits; ///< trees x splitsPerTree, each tree in breadth-first order
    std::vector<float> leaves; ///< trees x leavesPerTree x dims
};

} // namespace

struct LandmarkModel::Data {
    dlib::matrix<float, 0, 1> initialShape;
    std::vector<Cascade> cascades;
    std::size_t splitsPerTree = 0;
    std::size_t leavesPerTree = 0;
    std::size_t dims = 0; ///< 2 x parts

    /// Reads dlib's serialisation of a shape_predictor (dlib's
    /// `serialize(const shape_predictor&)`: version 1, the initial shape, the
    /// forests, the anchors, the deltas), one tree at a time, so that no
    /// second copy of the model is ever held. Throws dlib::serialization_error.
    void read(std::istream& in);
};

void LandmarkModel::Data::read(std::istream& in) {
    using dlib::deserialize; // and the trees' own, found by argument-dependent lookup
    int version = 0;
    deserialize(version, in);
    if (version != 1) {
        throw dlib::serialization_error("unexpected version found while deserializing "
                                        "dlib::shape_predictor");
    }
    deserialize(initialShape, in);
    dims = static_cast<std::size_t>(initialShape.size());
    unsigned long cascadeCount = 0;
    deserialize(cascadeCount, in);
    if (cascadeCount == 0 || cascadeCount > 1000) {
        throw dlib::serialization_error(fmt::format("{} cascades", cascadeCount));
    }
    cascades.resize(cascadeCount);
    dlib::impl::regression_tree tree;
    for (Cascade& cascade : cascades) {
        unsigned long treeCount = 0;
        deserialize(treeCount, in);
        if (treeCount > 100000) {
            throw dlib::serialization_error(fmt::format("{} trees in a cascade", treeCount));
        }
        cascade.trees = treeCount;
        for (unsigned long t = 0; t < treeCount; ++t) {
            deserialize(tree, in);
            if (splitsPerTree == 0) {
                splitsPerTree = tree.splits.size();
                leavesPerTree = tree.leaf_values.size();
                if (splitsPerTree == 0 || splitsPerTree > 4095 ||
                    leavesPerTree != splitsPerTree + 1) {
                    throw dlib::serialization_error(fmt::format("a tree of {} splits and {} leaves",
                                                                splitsPerTree, leavesPerTree));
                }
            }
            if (tree.splits.size() != splitsPerTree || tree.leaf_values.size() != leavesPerTree) {
                throw dlib::serialization_error("trees of different depths");
            }
            if (t == 0) {
                cascade.splits.reserve(treeCount * splitsPerTree);
                cascade.leaves.reserve(treeCount * leavesPerTree * dims);
            }
            for (const dlib::impl::split_feature& s : tree.splits) {
                cascade.splits.push_back({static_cast<std::uint32_t>(s.idx1),
                                          static_cast<std::uint32_t>(s.idx2), s.thresh});
            }
            for (const dlib::matrix<float, 0, 1>& leaf : tree.leaf_values) {
                if (static_cast<std::size_t>(leaf.size()) != dims) {
                    throw dlib::serialization_error("a leaf of another size than the shape");
                }
                cascade.leaves.insert(cascade.leaves.end(), leaf.begin(), leaf.end());
            }
        }
    }
    std::vector<std::vector<unsigned long>> anchorIdx;
    std::vector<std::vector<dlib::vector<float, 2>>> deltas;
    deserialize(anchorIdx, in);
    deserialize(deltas, in);
    if (anchorIdx.size() != cascades.size() || deltas.size() != cascades.size()) {
        throw dlib::serialization_error("anchors or deltas for another number of cascades");
    }
    for (std::size_t c = 0; c < cascades.size(); ++c) {
        Cascade& cascade = cascades[c];
        cascade.anchorIdx = std::move(anchorIdx[c]);
        cascade.deltas = std::move(deltas[c]);
        // What dlib's operator() assumes without checking: every index in range.
        const std::size_t features = cascade.deltas.size();
        if (cascade.anchorIdx.size() != features ||
            std::any_of(cascade.anchorIdx.begin(), cascade.anchorIdx.end(),
                        [&](unsigned long a) { return 2 * a + 1 >= dims; }) ||
            std::any_of(cascade.splits.begin(), cascade.splits.end(),
                        [&](const Split& s) { return s.idx1 >= features || s.idx2 >= features; })) {
            throw dlib::serialization_error("a feature index out of range");
        }
    }
}

std::variant<std::shared_ptr<const LandmarkModel>, std::string>
LandmarkModel::load(const std::string& path) {
    if (auto problem = landmarkModelProblem(path)) {
        return *problem;
    }
    auto data = std::make_unique<Data>();
    try {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            return fmt::format("landmark model \"{}\" cannot be opened", path);
        }
        data->read(in);
    } catch (const std::exception& e) {
        // dlib's messages span lines; the reason goes on one journal line.
        std::string reason = e.what();
        std::replace(reason.begin(), reason.end(), '\n', ' ');
        return fmt::format("landmark model \"{}\" is not a dlib shape predictor: {}", path, reason);
    }
    if (data->dims != 2 * std::tuple_size_v<FaceLandmarks>) {
        return fmt::format("landmark model \"{}\" has {} landmarks, not 68", path, data->dims / 2);
    }
    return std::shared_ptr<const LandmarkModel>(new LandmarkModel(std::move(data)));
}

LandmarkModel::LandmarkModel(std::unique_ptr<Data> data) : data_(std::move(data)) {
}
LandmarkModel::~LandmarkModel() = default;

FaceLandmarks LandmarkModel::predict(const LumaView& luma, const FaceBox& box) const {
    const Data& d = *data_;
    const cv::Mat full(luma.height, luma.width, CV_8UC1, const_cast<std::uint8_t*>(luma.data),
                       static_cast<std::size_t>(luma.stride));
    const dlib::cv_image<unsigned char> image(full);
    const dlib::rectangle rect(std::lround(box.left), std::lround(box.top),
                               std::lround(box.left + box.width) - 1,
                               std::lround(box.top + box.height) - 1);
    // dlib's shape_predictor::operator(), step for step; only the trees'
    // walk is split in two passes (the features do not change within a
    // cascade, so which leaf each tree lands in does not depend on the sum).
    dlib::matrix<float, 0, 1> shape = d.initialShape;
    std::vector<float> features;
    std::vector<std::uint32_t> leafOf;
    const std::size_t leafStride = d.leavesPerTree * d.dims;
    for (const Cascade& cascade : d.cascades) {
        dlib::impl::extract_feature_pixel_values(image, rect, shape, d.initialShape,
                                                 cascade.anchorIdx, cascade.deltas, features);
        leafOf.resize(cascade.trees);
        const Split* split = cascade.splits.data();
        for (std::size_t t = 0; t < cascade.trees; ++t, split += d.splitsPerTree) {
            std::size_t i = 0;
            while (i < d.splitsPerTree) {
                const Split& s = split[i];
                i = features[s.idx1] - features[s.idx2] > s.thresh ? 2 * i + 1 : 2 * i + 2;
            }
            leafOf[t] = static_cast<std::uint32_t>(i - d.splitsPerTree);
        }
        float* sum = &shape(0);
        const float* leaves = cascade.leaves.data();
        for (std::size_t t = 0; t < cascade.trees; ++t) {
            if (t + kPrefetchAhead < cascade.trees) {
                const std::size_t ahead = t + kPrefetchAhead;
                const char* next = reinterpret_cast<const char*>(leaves + ahead * leafStride +
                                                                 leafOf[ahead] * d.dims);
                for (std::size_t b = 0; b < d.dims * sizeof(float); b += 64) {
                    __builtin_prefetch(next + b);
                }
            }
            const float* leaf = leaves + t * leafStride + leafOf[t] * d.dims;
            for (std::size_t k = 0; k < d.dims; ++k) {
                sum[k] += leaf[k];
            }
        }
    }
    const dlib::point_transform_affine toImage = dlib::impl::unnormalizing_tform(rect);
    FaceLandmarks out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        const dlib::point p = toImage(dlib::impl::location(shape, i));
        out[i] = {static_cast<double>(p.x()), static_cast<double>(p.y())};
    }
    return out;
}

} // namespace dmsd
