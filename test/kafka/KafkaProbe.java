// Tiny Kafka admin client used by test/kafka.sh.
//
// Why it exists: Maven Central serves kafka_2.13 4.4.0 but not kafka-tools
// 4.4.0, so TopicCommand / BrokerApiVersionsCommand are not on the broker's
// classpath. kafka-clients' Admin API is, so this file covers the two things
// the script needs: "is the cluster really serving metadata?" and "which
// topics exist?". It is compiled once by kafka.sh into the jar cache.
//
// Usage:
//   KafkaProbe wait TIMEOUT_S ID@HOST:PORT[,...] EXPECTED_IDS [PID...]
//       Each listed node must answer a metadata request itself and report
//       every id in EXPECTED_IDS (comma list) as a live (unfenced) broker.
//       Fails fast (exit 3) when one of the PIDs dies; exit 2 on timeout.
//   KafkaProbe topics BOOTSTRAP
//       Prints "topic<TAB>partitions<TAB>replication-factor", sorted.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;

public final class KafkaProbe {
    private KafkaProbe() {}

    public static void main(String[] args) throws Exception {
        String cmd = args.length > 0 ? args[0] : "";
        int rc;
        if (cmd.equals("wait") && args.length >= 4) {
            rc = waitReady(args);
        } else if (cmd.equals("topics") && args.length == 2) {
            rc = topics(args[1]);
        } else {
            System.err.println("usage: KafkaProbe wait TIMEOUT_S ID@HOST:PORT[,...] IDS [PID...]"
                    + " | KafkaProbe topics BOOTSTRAP");
            rc = 64;
        }
        System.exit(rc);
    }

    private static Admin admin(String bootstrap, int timeoutMs) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "ue-kafka-probe");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, timeoutMs);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, timeoutMs);
        p.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, 100);
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, 100);
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 500);
        p.put(AdminClientConfig.SOCKET_CONNECTION_SETUP_TIMEOUT_MS_CONFIG, 1000);
        p.put(AdminClientConfig.SOCKET_CONNECTION_SETUP_TIMEOUT_MAX_MS_CONFIG, 2000);
        return Admin.create(p);
    }

    private static String rootMessage(Throwable t) {
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getClass().getSimpleName() + ": " + t.getMessage();
    }

    private static int waitReady(String[] a) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(a[1]));
        Map<Integer, String> nodes = new LinkedHashMap<>();
        for (String spec : a[2].split(",")) {
            int at = spec.indexOf('@');
            nodes.put(Integer.parseInt(spec.substring(0, at)), spec.substring(at + 1));
        }
        Set<Integer> expected = new TreeSet<>();
        for (String id : a[3].split(",")) {
            expected.add(Integer.parseInt(id));
        }
        List<Long> pids = new ArrayList<>();
        for (int i = 4; i < a.length; i++) {
            pids.add(Long.parseLong(a[i]));
        }

        String last = "no answer yet";
        while (true) {
            for (long pid : pids) {
                boolean alive = ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
                if (!alive) {
                    System.err.println("KafkaProbe: broker process " + pid + " exited");
                    return 3;
                }
            }
            boolean ready = true;
            for (Map.Entry<Integer, String> n : nodes.entrySet()) {
                // A fresh client bootstrapped at only this node: its first
                // metadata request must be answered by this very node.
                Admin admin = admin(n.getValue(), 2000);
                try {
                    Collection<Node> live = admin.describeCluster().nodes().get(3, TimeUnit.SECONDS);
                    Set<Integer> ids = new TreeSet<>();
                    for (Node node : live) {
                        ids.add(node.id());
                    }
                    if (!ids.containsAll(expected)) {
                        ready = false;
                        last = "node " + n.getKey() + " sees live brokers " + ids + ", want " + expected;
                    }
                } catch (Exception e) {
                    ready = false;
                    last = "node " + n.getKey() + " (" + n.getValue() + "): " + rootMessage(e);
                } finally {
                    admin.close(Duration.ZERO);
                }
                if (!ready) {
                    break;
                }
            }
            if (ready) {
                return 0;
            }
            if (System.nanoTime() > deadline) {
                System.err.println("KafkaProbe: timed out; last state: " + last);
                return 2;
            }
            Thread.sleep(250);
        }
    }

    private static int topics(String bootstrap) throws Exception {
        Admin admin = admin(bootstrap, 10000);
        try {
            Set<String> names = admin.listTopics(new ListTopicsOptions().listInternal(true)).names().get();
            Map<String, TopicDescription> desc =
                    new TreeMap<>(admin.describeTopics(names).allTopicNames().get());
            for (TopicDescription d : desc.values()) {
                int rf = d.partitions().isEmpty() ? 0 : d.partitions().get(0).replicas().size();
                System.out.println(d.name() + "\t" + d.partitions().size() + "\t" + rf);
            }
            return 0;
        } finally {
            admin.close(Duration.ofSeconds(2));
        }
    }
}
