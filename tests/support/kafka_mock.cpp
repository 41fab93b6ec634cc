// tumbled-kafka-mock: a Kafka cluster on loopback for tests, from librdkafka's mock cluster
// (rdkafka_mock.h: the real Kafka protocol, topics, consumer groups and offset commits).
//
//   tumbled-kafka-mock --brokers 1 --topic telemetry --partitions 4
//
// Prints `bootstrap=<host:port,...>` once the brokers listen, then serves until SIGTERM or
// SIGINT. SIGUSR1 takes every broker down (connections refused and closed), SIGUSR2 brings them
// back, so tests can cut the consumers off their cluster.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

volatile sig_atomic_t g_signal = 0;
extern "C" void remember(int signo) {
  g_signal = signo;
}

int number(const char* text) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 1 || value > 1000) {
    std::fprintf(stderr, "not a count from 1 to 1000: %s\n", text);
    std::exit(2);
  }
  return static_cast<int>(value);
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 1;
  int partitions = 4;
  std::string topic = "telemetry";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--brokers") {
      brokers = number(argv[i + 1]);
    } else if (flag == "--partitions") {
      partitions = number(argv[i + 1]);
    } else if (flag == "--topic") {
      topic = argv[i + 1];
    } else {
      std::fprintf(stderr, "usage: %s [--brokers N] [--topic T] [--partitions N]\n", argv[0]);
      return 2;
    }
  }

  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_t* host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (!host) {
    std::fprintf(stderr, "cannot create the mock cluster's handle: %s\n", error);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(host, brokers);
  if (!cluster) {
    std::fprintf(stderr, "cannot start the mock cluster\n");
    return 1;
  }
  if (const auto failed = rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, 1)) {
    std::fprintf(stderr, "cannot create topic %s: %s\n", topic.c_str(), rd_kafka_err2str(failed));
    return 1;
  }

  struct sigaction action {};
  action.sa_handler = remember;
  for (const int signo : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) sigaction(signo, &action, nullptr);

  std::printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
  std::fflush(stdout);
  for (;;) {
    pause();
    const int signo = g_signal;
    g_signal = 0;
    if (signo == SIGTERM || signo == SIGINT) break;
    if (signo == SIGUSR1 || signo == SIGUSR2) {
      for (int id = 1; id <= brokers; ++id) {
        if (signo == SIGUSR1) {
          rd_kafka_mock_broker_set_down(cluster, id);
        } else {
          rd_kafka_mock_broker_set_up(cluster, id);
        }
      }
      std::printf("brokers %s\n", signo == SIGUSR1 ? "down" : "up");
      std::fflush(stdout);
    }
  }
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(host);
  return 0;
}
