#pragma once

/// \file
/// Every analysis dmsd asks about, in output order: the one place an
/// analysis is registered. `X(Kind, factory)`: `Kind` becomes the
/// AnalysisKind enumerator, `factory` names the function (defined in the
/// analysis's own file under llm/analyses/) that returns its descriptor.
/// An analysis that depends on another (is given its answer) comes after it.

// clang-format off
#define DMSD_ANALYSES(X)                          \
    X(FaceState, faceStateAnalysis)               \
    X(Attention, attentionAnalysis)               \
    X(HandPosition, handPositionAnalysis)         \
    X(GeneralScene, generalSceneAnalysis)         \
    X(ImpairedDriving, impairedDrivingAnalysis)
// clang-format on
