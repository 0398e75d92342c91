// Formatting of `dmsd analyze` output and progress (batch/output.h, batch_progress.h).

#include <csignal>
#include <limits>
#include <memory>
#include <unistd.h>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "base/unique_fd.h"
#include "batch/output.h"
#include "batch/progress.h"
#include "llm/analyses/face_state.h"

namespace json = boost::json;
using namespace dmsd;
using namespace dmsd::batch;

namespace {

SequenceResult makeResult() {
    auto sequence = std::make_shared<EncodedSequence>();
    sequence->sequenceId = 3;
    sequence->tStartS = 4.0;
    sequence->tEndS = 6.0;
    for (double pts : {4.0, 4.6, 5.3, 5.9333333}) {
        SampledFrameInfo info;
        info.ptsSeconds = pts;
        sequence->frames.push_back(info);
    }
    SequenceResult result;
    result.sequence = sequence;
    result.metrics.mode = LlmMode::Parallel;
    result.metrics.latency = std::chrono::milliseconds(812);
    FaceStateAnswer face;
    face.state = FaceState::Sleepy;
    face.eyesClosed = true;
    face.confidence = 0.8;
    result.answers.set(face);
    AnalysisError error;
    error.kind = AnalysisError::Kind::Timeout;
    error.message = "attention: no answer from http://127.0.0.1:11434 within 20s";
    result.answers.setError(AnalysisKind::Attention, error);
    return result;
}

} // namespace

TEST_CASE("sequence line has the contract's fields in order", "[batch]") {
    AlertEvent event;
    event.type = AlertEvent::Type::Raised;
    event.kind = AlertKind::Drowsiness;
    event.level = AlertLevel::Warning;
    event.confidence = 0.81234;
    event.at = EngineTime(6000);
    const std::string line = sequenceLine("a.mp4", makeResult(), {event});
    CHECK(line.rfind(R"({"type":"sequence","video":"a.mp4","sequence_id":3,"t_start_s":4.0,)"
                     R"("t_end_s":6.0,"frames_pts_s":[4.0,4.6,5.3,5.933],"mode":"parallel",)"
                     R"("latency_ms":812,"analyses":{)",
                     0) == 0);
    const json::object parsed = json::parse(line).as_object();
    CHECK(parsed.at("analyses").at("face_state").at("state") == "SLEEPY");
    CHECK(parsed.at("analyses").at("attention").as_object().contains("error"));
    CHECK_FALSE(parsed.at("analyses").as_object().contains("hand_position"));
    const auto& alert = parsed.at("alerts").at(0).as_object();
    CHECK(alert.at("kind") == "DROWSINESS");
    CHECK(alert.at("level") == "warning");
    CHECK(alert.at("confidence").as_double() == Approx(0.812));
    CHECK(alert.at("t_s").as_double() == Approx(6.0));
    CHECK(alert.at("transition") == "raised");
}

TEST_CASE("summary line reports counts, alerts and the error", "[batch]") {
    VideoSummary summary;
    summary.status = VideoSummary::Status::Failed;
    summary.sequencesAnalysed = 5;
    summary.sequencesSkippedStatic = 2;
    summary.alertsRaised["DROWSINESS"] = 1;
    summary.error = "file:x.mp4: cannot be decoded";
    const json::object parsed = json::parse(summaryLine("x.mp4", summary)).as_object();
    CHECK(parsed.at("type") == "summary");
    CHECK(parsed.at("video") == "x.mp4");
    CHECK(parsed.at("status") == "failed");
    CHECK(parsed.at("sequences_analysed").as_int64() == 5);
    CHECK(parsed.at("sequences_skipped_static").as_int64() == 2);
    CHECK(parsed.at("alerts_raised").at("DROWSINESS").as_int64() == 1);
    CHECK(parsed.at("error") == "file:x.mp4: cannot be decoded");
    VideoSummary ok;
    CHECK_FALSE(json::parse(summaryLine("y", ok)).as_object().contains("error"));
}

TEST_CASE("LineWriter writes whole lines and reports a closed pipe", "[batch]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    UniqueFd readEnd(fds[0]);
    UniqueFd writeEnd(fds[1]);
    LineWriter writer(writeEnd.get());
    REQUIRE(writer.writeLine("{\"a\":1}"));
    char buffer[64] = {};
    const ssize_t n = ::read(readEnd.get(), buffer, sizeof buffer);
    CHECK(std::string(buffer, static_cast<std::size_t>(n)) == "{\"a\":1}\n");
    readEnd.reset();
    ::signal(SIGPIPE, SIG_IGN);
    CHECK_FALSE(writer.writeLine("{}"));
    CHECK(writer.error().find("failed") != std::string::npos);

    LineWriter missing(std::string("/nonexistent-dir/out.jsonl"));
    CHECK_FALSE(missing.ok());
    CHECK(missing.error().find("/nonexistent-dir/out.jsonl") != std::string::npos);
}

TEST_CASE("progress formatting", "[batch]") {
    CHECK(formatClock(0) == "0:00");
    CHECK(formatClock(83) == "1:23");
    CHECK(formatClock(3723) == "1:02:03");
    CHECK_FALSE(estimateEta(0, 10, 5));
    REQUIRE(estimateEta(5, 10, 5));
    CHECK(*estimateEta(5, 10, 5) == Approx(5.0));

    ProgressFigures f;
    f.videosDone = 1;
    f.videosTotal = 4;
    f.windowsDone = 30;
    f.windowsEstimated = 120;
    f.requestsInFlight = 4;
    f.elapsedS = 15;
    f.etaS = 45;
    const std::string bar = formatBar(f, 100);
    CHECK(bar.size() <= 100);
    CHECK(bar.find("1/4 videos") != std::string::npos);
    CHECK(bar.find("30/~120 sequences") != std::string::npos);
    CHECK(bar.find("4 in flight") != std::string::npos);
    CHECK(bar.find("ETA 0:45") != std::string::npos);
    CHECK(formatBar(f, 20).size() <= 20);
    const std::string plain = formatPlain(f);
    CHECK(plain.find("ETA 0:45") != std::string::npos);
    CHECK(plain.find("elapsed 0:15") != std::string::npos);
}

TEST_CASE("signals line: the frame's measurements, null where not measured", "[batch]") {
    DriverSignals s;
    s.tS = 12.3456;
    s.facePresent = {true, 0.91};
    s.earRight = {0.281, 0.9};
    s.earLeft = {0.1234, 0.9};
    s.eyesClosed = {true, 0.9};
    s.eyesClosedS = 2.05;
    s.eyesClosedLong = true;
    s.blinks = 4;
    s.perclos = {0.1, 0.5};
    s.pose = {{-3.14, 5.0, 1.0}, 0.9};
    const std::string line = batch::signalsLine("trip.mp4", s);
    CHECK(line ==
          R"({"type":"signals","video":"trip.mp4","t_s":12.346,"face_present":true,)"
          R"("face_confidence":0.91,"face_absent_s":0.0,"ear_right":0.281,"ear_left":0.123,)"
          R"("eyes_closed":true,"eyes_closed_s":2.05,"blinks":4,"perclos":0.1,)"
          R"("perclos_confidence":0.5,"mar":null,"yawns":0,"yaw_deg":-3.1,"pitch_deg":5.0,)"
          R"("roll_deg":1.0,"outside_cone_s":0.0,"conditions":["eyes_closed_long"]})");
}
