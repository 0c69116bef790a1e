// The LibTorch code of clf and cf as the front-end `sensecf` sees it: the
// symbols of clf/nn.cpp, cf/autoencoder.cpp and cf/dice_gradient.cpp that
// the rest of those modules reference, so that the front-end links without
// LibTorch. The front-end hands every case that would reach them to
// sensecf-full (command_set_front.cpp), so each throws an internal error;
// set_torch_threads, which explain calls for every classifier, does nothing.
#include <string>

#include "sensecf/cf/autoencoder.h"
#include "sensecf/cf/dice.h"
#include "sensecf/clf/nn.h"
#include "sensecf/core/error.h"

namespace sensecf {
namespace {

[[noreturn]] void unreachable(const std::string& what) {
  throw Error("internal: " + what + " needs LibTorch, and this is the front-end sensecf, which has none",
              "please report it with the command line; run sensecf-full (beside sensecf) directly meanwhile");
}

}  // namespace

namespace clf {

std::unique_ptr<Classifier> make_nn_classifier(const ClfOptions& /*options*/) { unreachable("the nn classifier"); }
void set_torch_threads(int /*n*/) {}

}  // namespace clf

namespace cf {

struct Autoencoder::Impl {};
Autoencoder::Autoencoder() = default;
Autoencoder::~Autoencoder() = default;
Autoencoder::Autoencoder(Autoencoder&&) noexcept = default;
Autoencoder& Autoencoder::operator=(Autoencoder&&) noexcept = default;
void Autoencoder::fit(const data::Schema& /*schema*/, const data::Matrix& /*x*/, const AutoencoderOptions& /*options*/) {
  unreachable("NICE's autoencoder (nice-plausibility)");
}
bool Autoencoder::fitted() const { return false; }
std::vector<double> Autoencoder::reconstruction_error(const data::Matrix& /*x*/) const {
  unreachable("NICE's autoencoder (nice-plausibility)");
}
double Autoencoder::training_error() const { unreachable("NICE's autoencoder (nice-plausibility)"); }

std::unique_ptr<Generator> make_dice_gradient(const CfOptions& /*options*/) { unreachable("dice-gradient"); }

}  // namespace cf
}  // namespace sensecf
