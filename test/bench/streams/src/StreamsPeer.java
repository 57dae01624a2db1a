/*
 * StreamsPeer.java - the Kafka Streams peer of bench_enrich (test/bench/bench_enrich.c): the
 * same raw events, comparable work, exactly_once_v2, one stream thread, measured the way the C
 * side measures itself.
 *
 * The topology reads the raw topics as bytes and, per record: hand-parses the userevents.Event
 * fields it needs (event_id 1, user_id 3, timestamp_ms 6, sent_at_ms 7) with CodedInputStream;
 * drops a duplicate event id seen within an hour (a persistent window store, as in the usual
 * Streams dedup recipe); keeps the user's session (a persistent key-value store, cached, gap 30
 * minutes, like libenrich's session stage); and writes an EnrichedEvent-shaped value (the event,
 * received and clock-corrected time, session, source topic/partition/offset) keyed by user id.
 * It does less than libenrich (no user agent parsing, profile join, window aggregates or
 * anomaly rates), so the comparison favours Streams.
 *
 * The clock starts at the first record processed (JVM start, group join and store creation are
 * not timed, as on the C side) and stops when the group's committed offsets cover every input
 * record, i.e. when the last transaction has committed. CPU is the whole JVM's (GC, JIT,
 * RocksDB threads included); peak RSS is VmHWM.
 *
 * Usage: StreamsPeer BOOTSTRAP APP_ID OUTPUT_TOPIC EVENTS COMMIT_MS MAX_POLL_RECORDS STATE_DIR
 *        INPUT_TOPIC... ; prints "RESULT <events> <wall s> <cpu s> <VmHWM kB> -1 <dropped>".
 *
 * Member mode, one of several instances of one application (bench_enrich_scale and
 * bench_enrich_rebalance): it cannot know when the group is done, so it runs until its stdin
 * closes (the parent watches the group's committed offsets), prints "TASKS <ns> <partitions>"
 * whenever its active tasks change (a task's processor initialised or closed) (System.nanoTime() is CLOCK_MONOTONIC on Linux, the C side's
 * clock) and at the end "MEMBER <processed> <written> <first record ns> <cpu s> <VmHWM kB>".
 *        StreamsPeer --member INSTANCE_ID STANDBYS RECOVERY_LAG BOOTSTRAP APP_ID OUTPUT_TOPIC
 *        COMMIT_MS MAX_POLL_RECORDS STATE_DIR INPUT_TOPIC...
 * INSTANCE_ID is the consumer's group.instance.id (static membership, as libenrich's
 * instance.id); RECOVERY_LAG is acceptable.recovery.lag, -1 for Streams' default.
 */
import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.WireFormat;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.HashSet;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

public final class StreamsPeer {
    static final long DEDUP_WINDOW_MS = 3_600_000L; /* libenrich dedup.window.ms default */
    static final long SESSION_GAP_MS = 1_800_000L;  /* libenrich session.gap.ms default */

    /* Written by the one stream thread, read by main. */
    static volatile long processed, dropped, undecodable, t0Ns, cpu0Ns = -1;
    static long total;

    static long cpuNs() {
        return ((com.sun.management.OperatingSystemMXBean)
                        ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    static long vmHwmKb() throws IOException {
        for (String line : Files.readAllLines(Paths.get("/proc/self/status")))
            if (line.startsWith("VmHWM:"))
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
        return -1;
    }

    /* The fields of a userevents.Event this peer needs. */
    static final class Fields {
        ByteString id;
        String user = "";
        long ts, sentAt;

        static Fields parse(byte[] value) throws IOException {
            Fields f = new Fields();
            CodedInputStream in = CodedInputStream.newInstance(value);
            for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
                int field = WireFormat.getTagFieldNumber(tag);
                int wire = WireFormat.getTagWireType(tag);
                if (field == 1 && wire == WireFormat.WIRETYPE_LENGTH_DELIMITED)
                    f.id = in.readBytes();
                else if (field == 3 && wire == WireFormat.WIRETYPE_LENGTH_DELIMITED)
                    f.user = in.readStringRequireUtf8();
                else if (field == 6 && wire == WireFormat.WIRETYPE_VARINT)
                    f.ts = in.readInt64();
                else if (field == 7 && wire == WireFormat.WIRETYPE_VARINT)
                    f.sentAt = in.readInt64();
                else
                    in.skipField(tag);
            }
            return f;
        }
    }

    static final class Enrich implements Processor<byte[], byte[], byte[], byte[]> {
        private ProcessorContext<byte[], byte[]> ctx;
        private WindowStore<Bytes, Long> dedup;
        private KeyValueStore<String, byte[]> sessions;

        private int task = -1;

        @Override
        public void init(ProcessorContext<byte[], byte[]> context) {
            ctx = context;
            dedup = context.getStateStore("dedup");
            sessions = context.getStateStore("sessions");
            task = context.taskId().partition();
            taskChange(task, true);
        }

        @Override
        public void close() {
            taskChange(task, false);
        }

        @Override
        public void process(Record<byte[], byte[]> r) {
            if (cpu0Ns < 0) {
                t0Ns = System.nanoTime();
                cpu0Ns = cpuNs();
            }
            try {
                handle(r);
            } catch (IOException e) {
                undecodable++; /* libenrich would dead-letter it */
            }
            if (++processed == total)
                ctx.commit(); /* the last one: do not wait for commit.interval.ms */
        }

        private void handle(Record<byte[], byte[]> r) throws IOException {
            Fields f = Fields.parse(r.value());
            if (f.id == null || f.id.size() != 16)
                throw new IOException("no event id");
            Bytes id = Bytes.wrap(f.id.toByteArray());
            try (WindowStoreIterator<Long> it =
                         dedup.fetch(id, f.ts - DEDUP_WINDOW_MS, f.ts + DEDUP_WINDOW_MS)) {
                if (it.hasNext()) {
                    dropped++;
                    return;
                }
            }
            dedup.put(id, f.ts, f.ts);

            /* Session: start (8) last (8) sequence (4) id (rest). */
            byte[] s = sessions.get(f.user);
            ByteBuffer b = s == null ? null : ByteBuffer.wrap(s);
            long start, last;
            int seq;
            String sid;
            if (b == null || f.ts - b.getLong(8) > SESSION_GAP_MS) {
                start = f.ts;
                last = f.ts;
                seq = 1;
                sid = f.user + "-" + f.ts;
            } else {
                start = b.getLong(0);
                last = Math.max(b.getLong(8), f.ts);
                seq = b.getInt(16) + 1;
                sid = new String(s, 20, s.length - 20, StandardCharsets.UTF_8);
            }
            byte[] sidBytes = sid.getBytes(StandardCharsets.UTF_8);
            sessions.put(f.user, ByteBuffer.allocate(20 + sidBytes.length).putLong(start)
                    .putLong(last).putInt(seq).put(sidBytes).array());

            long received = r.timestamp();
            long corrected = f.sentAt > 0 ? f.ts + (received - f.sentAt) : f.ts;
            ctx.forward(r.withValue(enriched(r.value(), received, corrected, sid, seq, start)));
        }

        /* An EnrichedEvent (proto/enriched.proto) with the fields this peer fills. */
        private byte[] enriched(byte[] event, long received, long corrected, String sid,
                                int seq, long start) throws IOException {
            int sessionSize = CodedOutputStream.computeStringSize(1, sid)
                    + CodedOutputStream.computeUInt32Size(2, seq)
                    + CodedOutputStream.computeInt64Size(3, start);
            RecordMetadata md = ctx.recordMetadata().orElseThrow();
            int size = CodedOutputStream.computeByteArraySize(1, event)
                    + CodedOutputStream.computeInt64Size(2, received)
                    + CodedOutputStream.computeInt64Size(3, corrected)
                    + CodedOutputStream.computeTagSize(7)
                    + CodedOutputStream.computeUInt32SizeNoTag(sessionSize) + sessionSize
                    + CodedOutputStream.computeStringSize(8, md.topic())
                    + CodedOutputStream.computeInt32Size(9, md.partition())
                    + CodedOutputStream.computeInt64Size(10, md.offset())
                    + CodedOutputStream.computeUInt32Size(11, 1);
            byte[] out = new byte[size];
            CodedOutputStream o = CodedOutputStream.newInstance(out);
            o.writeByteArray(1, event);
            o.writeInt64(2, received);
            o.writeInt64(3, corrected);
            o.writeTag(7, WireFormat.WIRETYPE_LENGTH_DELIMITED);
            o.writeUInt32NoTag(sessionSize);
            o.writeString(1, sid);
            o.writeUInt32(2, seq);
            o.writeInt64(3, start);
            o.writeString(8, md.topic());
            o.writeInt32(9, md.partition());
            o.writeInt64(10, md.offset());
            o.writeUInt32(11, 1);
            o.checkNoSpaceLeft();
            return out;
        }
    }

    static Properties props(String bootstrap, String appId, int commitMs, int maxPoll,
                            String stateDir) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitMs);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), maxPoll);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        /* libenrich's producer settings, so both compress and batch alike. */
        p.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "zstd");
        p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);
        return p;
    }

    /* Sum of the group's committed offsets on the input topics. */
    static long committed(Admin admin, String appId, Set<String> inputs) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m =
                admin.listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata().get();
        long sum = 0;
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : m.entrySet())
            if (e.getValue() != null && inputs.contains(e.getKey().topic()))
                sum += e.getValue().offset();
        return sum;
    }

    static KafkaStreams start(List<String> inputs, String output, Properties p) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.addStateStore(Stores.windowStoreBuilder(
                Stores.persistentWindowStore("dedup", Duration.ofMillis(DEDUP_WINDOW_MS),
                        Duration.ofMillis(DEDUP_WINDOW_MS), false),
                Serdes.Bytes(), Serdes.Long()));
        builder.addStateStore(Stores.keyValueStoreBuilder(
                        Stores.persistentKeyValueStore("sessions"), Serdes.String(),
                        Serdes.ByteArray())
                .withCachingEnabled()); /* libenrich writes a session once per commit too */
        builder.stream(inputs, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
                .process(Enrich::new, "dedup", "sessions")
                .to(output, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
        KafkaStreams streams = new KafkaStreams(builder.build(), p);
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        return streams;
    }

    /* Member mode: the active tasks of this instance, by partition (task 0_p reads partition p
     * of every input topic, like a libenrich task). A task's processor is initialised once its
     * stores are restored, just before it processes (libenrich reports a task at the same
     * point), and closed once it is revoked and committed. */
    static volatile boolean member;
    static final TreeSet<Integer> tasks = new TreeSet<>();

    static synchronized void taskChange(int task, boolean add) {
        if (!member || (add ? !tasks.add(task) : !tasks.remove(task)))
            return;
        StringBuilder b = new StringBuilder();
        for (int p : tasks)
            b.append(b.length() > 0 ? "," : "").append(p);
        System.out.printf("TASKS %d %s%n", System.nanoTime(), b.length() > 0 ? b : "-");
        System.out.flush();
    }

    /* args after --member: INSTANCE_ID STANDBYS RECOVERY_LAG BOOTSTRAP APP_ID OUTPUT_TOPIC
     * COMMIT_MS MAX_POLL_RECORDS STATE_DIR INPUT_TOPIC... */
    static void member(String[] args) throws Exception {
        total = Long.MAX_VALUE; /* no last record: the parent says when to stop */
        member = true;
        Properties p = props(args[3], args[4], Integer.parseInt(args[6]),
                Integer.parseInt(args[7]), args[8]);
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG), args[0]);
        p.put(StreamsConfig.NUM_STANDBY_REPLICAS_CONFIG, Integer.parseInt(args[1]));
        if (Long.parseLong(args[2]) >= 0)
            p.put(StreamsConfig.ACCEPTABLE_RECOVERY_LAG_CONFIG, Long.parseLong(args[2]));
        /* libenrich's group settings: a member gone for good loses its tasks after 10 s. */
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10000);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 2000);

        KafkaStreams streams =
                start(Arrays.asList(args).subList(9, args.length), args[5], p);
        AtomicBoolean eof = new AtomicBoolean();
        Thread reader = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                }
            } catch (IOException e) {
                /* a closed stdin is the signal too */
            }
            eof.set(true);
        });
        reader.setDaemon(true);
        reader.start();
        while (!eof.get()) {
            KafkaStreams.State st = streams.state();
            if (st == KafkaStreams.State.ERROR || st == KafkaStreams.State.NOT_RUNNING) {
                System.err.printf("StreamsPeer %s: state %s%n", args[0], st);
                System.exit(1);
            }
            Thread.sleep(10);
        }
        long cpu1 = cpuNs(), hwm = vmHwmKb();
        member = false; /* closing the tasks below is not a change the parent should see */
        System.out.printf("MEMBER %d %d %d %.6f %d%n", processed,
                processed - dropped - undecodable, cpu0Ns < 0 ? 0 : t0Ns,
                cpu0Ns < 0 ? 0.0 : (cpu1 - cpu0Ns) / 1e9, hwm);
        System.out.flush();
        streams.close(Duration.ofSeconds(30));
        System.exit(0);
    }

    public static void main(String[] args) throws Exception {
        if (args.length >= 12 && args[0].equals("--member")) {
            member(Arrays.copyOfRange(args, 1, args.length));
            return;
        }
        if (args.length < 8) {
            System.err.println("usage: StreamsPeer BOOTSTRAP APP_ID OUTPUT_TOPIC EVENTS "
                    + "COMMIT_MS MAX_POLL_RECORDS STATE_DIR INPUT_TOPIC...");
            System.exit(2);
        }
        String bootstrap = args[0], appId = args[1], stateDir = args[6];
        total = Long.parseLong(args[3]);
        int commitMs = Integer.parseInt(args[4]), maxPoll = Integer.parseInt(args[5]);
        List<String> inputs = Arrays.asList(args).subList(7, args.length);

        Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap));
        KafkaStreams streams =
                start(inputs, args[2], props(bootstrap, appId, commitMs, maxPoll, stateDir));

        long deadline = System.nanoTime() + 300_000_000_000L;
        Set<String> inputSet = new HashSet<>(inputs);
        while (processed < total || committed(admin, appId, inputSet) < total) {
            if (System.nanoTime() > deadline || streams.state() == KafkaStreams.State.ERROR
                    || streams.state() == KafkaStreams.State.NOT_RUNNING) {
                System.err.printf("StreamsPeer: %d of %d processed, state %s%n", processed, total,
                        streams.state());
                System.exit(1);
            }
            Thread.sleep(processed < total ? 5 : 10);
        }
        long t1 = System.nanoTime(), cpu1 = cpuNs(), hwm = vmHwmKb();
        System.out.printf("RESULT %d %.6f %.6f %d -1 %d%n", total, (t1 - t0Ns) / 1e9,
                (cpu1 - cpu0Ns) / 1e9, hwm, dropped + undecodable);
        System.out.flush();
        streams.close(Duration.ofSeconds(30));
        admin.close(Duration.ofSeconds(5));
        System.exit(0);
    }
}
