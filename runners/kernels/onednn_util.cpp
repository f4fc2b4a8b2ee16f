#ifdef EMBEVAL_HAVE_DNNL
#include "runners/kernels/onednn_util.h"

namespace embeval::onednn {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

}  // namespace embeval::onednn
#endif
