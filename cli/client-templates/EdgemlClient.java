// A client for the edgeml service __EDGEML_SERVICE__ (written by `edgeml service client`).
// Java 11+, standard library only (java.net.http). Save as EdgemlClient.java, then:
//
//   export __EDGEML_KEY_ENV_NAME__=...           # the service key `edgeml deploy` printed
//   edgeml hub ca > hub-ca.pem && export EDGEML_SERVICE_CA=$PWD/hub-ca.pem
//   java EdgemlClient.java input.json         # or: javac EdgemlClient.java && java EdgemlClient - < input.json
//
// Sample input: __EDGEML_SAMPLE__
// From your code: `String answer = EdgemlClient.score("{...}");` (JSON text in, JSON text out).
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public final class EdgemlClient {
    static final String URL = "__EDGEML_SCORE_URL__";
    static final String KEY_ENV = "__EDGEML_KEY_ENV__";
    // With this set, the hub's CA alone is trusted for the gateway.
    static final String CA_ENV = "EDGEML_SERVICE_CA";
    // A busy (429) or starting (503) service is asked again after its Retry-After, within these bounds.
    static final int MAX_TRIES = 5;
    static final double MAX_WAIT_SECONDS = 30;
    static final double DEFAULT_RETRY_AFTER = 1;

    public static final class ScoreException extends Exception {
        ScoreException(String message) {
            super(message);
        }
    }

    private EdgemlClient() {}

    static SSLContext trusting(String caFile) throws ScoreException {
        try (InputStream in = new FileInputStream(caFile)) {
            KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            int i = 0;
            for (Certificate ca : CertificateFactory.getInstance("X.509").generateCertificates(in)) store.setCertificateEntry("ca" + i++, ca);
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(store);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, tmf.getTrustManagers(), null);
            return context;
        } catch (IOException | GeneralSecurityException e) {
            throw new ScoreException(CA_ENV + " " + caFile + ": " + e.getMessage());
        }
    }

    static double retryAfter(HttpResponse<String> response) {
        try {
            double seconds = Double.parseDouble(response.headers().firstValue("Retry-After").orElse(""));
            return seconds >= 0 ? seconds : DEFAULT_RETRY_AFTER;
        } catch (NumberFormatException e) {
            return DEFAULT_RETRY_AFTER;
        }
    }

    /** Scores one input (JSON text) and returns the service's answer (JSON text). */
    public static String score(String json) throws ScoreException, InterruptedException {
        String key = System.getenv(KEY_ENV);
        if (key == null || key.isEmpty()) throw new ScoreException("set " + KEY_ENV + " to the service key");
        HttpClient.Builder builder = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10));
        String caFile = System.getenv(CA_ENV);
        if (caFile != null && !caFile.isEmpty()) builder.sslContext(trusting(caFile));
        HttpClient client = builder.build();
        HttpRequest request = HttpRequest.newBuilder(URI.create(URL))
                .timeout(Duration.ofSeconds(60))
                .header("content-type", "application/json")
                .header("authorization", "Bearer " + key)
                .POST(HttpRequest.BodyPublishers.ofString(json, StandardCharsets.UTF_8))
                .build();
        double waited = 0;
        for (int attempt = 1; ; attempt++) {
            HttpResponse<String> response;
            try {
                response = client.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new ScoreException("cannot reach " + URL + ": " + e);
            }
            int status = response.statusCode();
            if (status == 200) return response.body();
            double delay = retryAfter(response);
            if ((status == 429 || status == 503) && attempt < MAX_TRIES && waited + delay <= MAX_WAIT_SECONDS) {
                Thread.sleep((long) (delay * 1000));
                waited += delay;
                continue;
            }
            String body = response.body().trim();
            throw new ScoreException(URL + " answered " + status + ": " + body.substring(0, Math.min(300, body.length())));
        }
    }

    public static void main(String[] args) throws InterruptedException {
        String path = args.length > 0 ? args[0] : "-";
        String json;
        try {
            json = path.equals("-") ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8) : Files.readString(Paths.get(path));
        } catch (IOException e) {
            System.err.println("error: input " + path + ": " + e.getMessage());
            System.exit(2);
            return;
        }
        try {
            System.out.println(score(json));
        } catch (ScoreException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }
}
