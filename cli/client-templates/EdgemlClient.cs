// A client for the edgeml service __EDGEML_SERVICE__ (written by `edgeml service client`).
// C# 6+, .NET Framework 4.7.2+ / Mono / .NET Core 2.1+, base class library only (System.Net.Http).
//
//   export __EDGEML_KEY_ENV_NAME__=...           # the service key `edgeml deploy` printed
//   edgeml hub ca > hub-ca.pem && export EDGEML_SERVICE_CA=$PWD/hub-ca.pem
//   mcs -r:System.Net.Http.dll EdgemlClient.cs && mono EdgemlClient.exe input.json
//   (or add it to a `dotnet new console` project)
//
// Sample input: __EDGEML_SAMPLE__
// From your code: `string answer = EdgemlClient.Score("{...}");` (JSON text in, JSON text out).
using System;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;

public static class EdgemlClient
{
    const string Url = "__EDGEML_SCORE_URL__";
    const string KeyEnv = "__EDGEML_KEY_ENV__";
    // With this set, the hub's CA alone is trusted for the gateway.
    const string CaEnv = "EDGEML_SERVICE_CA";
    // A busy (429) or starting (503) service is asked again after its Retry-After, within these bounds.
    const int MaxTries = 5;
    const double MaxWaitSeconds = 30;
    const double DefaultRetryAfter = 1;

    public class ScoreException : Exception
    {
        public ScoreException(string message) : base(message) { }
    }

    static HttpClientHandler Handler()
    {
        var handler = new HttpClientHandler();
        var caFile = Environment.GetEnvironmentVariable(CaEnv);
        if (string.IsNullOrEmpty(caFile)) return handler;
        X509Certificate2 ca;
        try { ca = new X509Certificate2(File.ReadAllBytes(caFile)); }
        catch (Exception e) { throw new ScoreException(CaEnv + " " + caFile + ": " + e.Message); }
        // The name must match as usual; the chain must end at this CA (and no other).
        handler.ServerCertificateCustomValidationCallback = (request, cert, chain, errors) =>
        {
            if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) return false;
            var own = new X509Chain();
            own.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            own.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
            own.ChainPolicy.ExtraStore.Add(ca);
            if (!own.Build(cert)) return false;
            var root = own.ChainElements[own.ChainElements.Count - 1].Certificate;
            return root.Thumbprint == ca.Thumbprint;
        };
        return handler;
    }

    static double RetryAfter(HttpResponseMessage response)
    {
        var delta = response.Headers.RetryAfter == null ? null : response.Headers.RetryAfter.Delta;
        return delta.HasValue ? delta.Value.TotalSeconds : DefaultRetryAfter;
    }

    /// Scores one input (JSON text) and returns the service's answer (JSON text).
    public static string Score(string json)
    {
        var key = Environment.GetEnvironmentVariable(KeyEnv);
        if (string.IsNullOrEmpty(key)) throw new ScoreException("set " + KeyEnv + " to the service key");
        using (var client = new HttpClient(Handler()) { Timeout = TimeSpan.FromSeconds(60) })
        {
            double waited = 0;
            for (var attempt = 1; ; attempt++)
            {
                var request = new HttpRequestMessage(HttpMethod.Post, Url) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
                request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
                HttpResponseMessage response;
                string body;
                try
                {
                    response = client.SendAsync(request).GetAwaiter().GetResult();
                    body = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                }
                catch (Exception e)
                {
                    var inner = e.InnerException != null ? e.InnerException.Message : e.Message;
                    throw new ScoreException("cannot reach " + Url + ": " + inner);
                }
                var status = (int)response.StatusCode;
                if (status == 200) return body;
                var delay = RetryAfter(response);
                if ((status == 429 || status == 503) && attempt < MaxTries && waited + delay <= MaxWaitSeconds)
                {
                    Thread.Sleep(TimeSpan.FromSeconds(delay));
                    waited += delay;
                    continue;
                }
                body = body.Trim();
                throw new ScoreException(Url + " answered " + status + ": " + body.Substring(0, Math.Min(300, body.Length)));
            }
        }
    }

    public static int Main(string[] args)
    {
        var path = args.Length > 0 ? args[0] : "-";
        string json;
        try { json = path == "-" ? Console.In.ReadToEnd() : File.ReadAllText(path); }
        catch (Exception e)
        {
            Console.Error.WriteLine("error: input " + path + ": " + e.Message);
            return 2;
        }
        try
        {
            Console.WriteLine(Score(json));
            return 0;
        }
        catch (ScoreException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 1;
        }
    }
}
