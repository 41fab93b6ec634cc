// TSan builds only (CMakeLists.txt): librdkafka starts its threads with C11 thrd_create, which
// glibc >= 2.34 implements without calling pthread_create, and g++ 12's ThreadSanitizer runtime
// does not intercept it. Such a thread is unknown to TSan, whose allocator then crashes on the
// thread's first malloc. These definitions in the executable take precedence over glibc's for
// librdkafka, and start, detach and join its threads through pthread, which TSan sees; a thread's
// int result travels in the pointer its start routine returns, as in glibc.
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <new>

namespace {

struct Start {
  thrd_start_t function;
  void* argument;
};

void* run(void* start) {
  const Start s = *static_cast<Start*>(start);
  delete static_cast<Start*>(start);
  return reinterpret_cast<void*>(static_cast<std::intptr_t>(s.function(s.argument)));
}

}  // namespace

extern "C" int thrd_create(thrd_t* thread, thrd_start_t function, void* argument) {
  auto* start = new (std::nothrow) Start{function, argument};
  if (start == nullptr) return thrd_nomem;
  pthread_t id;
  const int error = pthread_create(&id, nullptr, run, start);
  if (error != 0) {
    delete start;
    return error == EAGAIN ? thrd_nomem : thrd_error;
  }
  *thread = id;
  return thrd_success;
}

// Detaching and joining through pthread too, so that TSan sees the threads end as it saw them
// start (glibc's own calls would leave them "leaked" to TSan).
extern "C" int thrd_detach(thrd_t thread) {
  return pthread_detach(thread) == 0 ? thrd_success : thrd_error;
}

extern "C" int thrd_join(thrd_t thread, int* result) {
  void* returned = nullptr;
  if (pthread_join(thread, &returned) != 0) return thrd_error;
  if (result != nullptr) *result = static_cast<int>(reinterpret_cast<std::intptr_t>(returned));
  return thrd_success;
}
