#include "face_images.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/imgproc.hpp>
#include <vector>

#include <turbojpeg.h>

#include "vision/settings.h"

namespace dmsd::test {

std::optional<cv::Mat> loadGray(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    const std::vector<unsigned char> jpeg((std::istreambuf_iterator<char>(in)), {});
    tjhandle handle = tjInitDecompress();
    int width = 0;
    int height = 0;
    int subsampling = 0;
    int colorspace = 0;
    std::optional<cv::Mat> out;
    if (tjDecompressHeader3(handle, jpeg.data(), jpeg.size(), &width, &height, &subsampling,
                            &colorspace) == 0) {
        cv::Mat gray(height, width, CV_8UC1);
        if (tjDecompress2(handle, jpeg.data(), jpeg.size(), gray.data, width, 0, height, TJPF_GRAY,
                          0) == 0) {
            out = gray;
        }
    }
    tjDestroy(handle);
    return out;
}

cv::Mat driverFrame(const cv::Mat& image, int width, int height) {
    const double scale =
        std::min(static_cast<double>(width) / image.cols, static_cast<double>(height) / image.rows);
    cv::Mat scaled;
    cv::resize(image, scaled, cv::Size(), scale, scale,
               scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
    cv::Mat frame(height, width, CV_8UC1, cv::Scalar(128));
    scaled.copyTo(frame(
        cv::Rect((width - scaled.cols) / 2, (height - scaled.rows) / 2, scaled.cols, scaled.rows)));
    return frame;
}

LumaView lumaView(const cv::Mat& gray) {
    return {gray.data, static_cast<int>(gray.step), gray.cols, gray.rows};
}

FramePtr frameOf(const cv::Mat& gray, std::uint64_t id, double ptsS) {
    const int w = gray.cols;
    const int h = gray.rows;
    std::vector<std::uint8_t> i420(Frame::i420Size(w, h), 128);
    for (int y = 0; y < h; ++y) {
        std::memcpy(i420.data() + static_cast<std::size_t>(y) * w, gray.ptr(y),
                    static_cast<std::size_t>(w));
    }
    FrameMeta meta;
    meta.id = id;
    meta.ptsS = ptsS;
    return Frame::fromI420(std::move(i420), w, h, meta);
}

bool landmarkModelInstalled() {
    return !landmarkModelProblem(kDefaultLandmarkModel);
}

} // namespace dmsd::test
