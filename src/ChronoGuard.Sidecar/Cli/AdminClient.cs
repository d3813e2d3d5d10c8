using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>
/// The client side of the admin API (SPEC §9) for the CLI verbs: where it is (<c>--admin</c> or
/// <c>CHRONOGUARD_ADMIN</c>), the token (<c>--token-file</c> or <c>CHRONOGUARD_ADMIN_TOKEN_FILE</c>),
/// and one request turned into an exit code and one line: 0 answered, 1 refused or unreachable,
/// 2 usage or a local file that cannot be read.
/// </summary>
internal sealed class AdminClient
{
    public const string AdminVariable = "CHRONOGUARD_ADMIN";
    public const string TokenVariable = "CHRONOGUARD_ADMIN_TOKEN_FILE";

    private readonly Uri _base;
    private readonly string _token;
    private readonly string _tokenFile;

    private AdminClient(Uri address, string token, string tokenFile)
    {
        _base = address;
        _token = token;
        _tokenFile = tokenFile;
    }

    /// <summary>Takes <c>--admin</c> and <c>--token-file</c> out of <paramref name="args"/> (both forms: <c>--admin URL</c>, <c>--admin=URL</c>).</summary>
    public static string? TakeOptions(List<string> args, out string? admin, out string? tokenFile)
    {
        admin = null;
        tokenFile = null;
        for (var i = 0; i < args.Count; i++)
        {
            foreach (var name in (ReadOnlySpan<string>)["--admin", "--token-file"])
            {
                string? value = null;
                if (args[i] == name)
                {
                    if (i + 1 >= args.Count)
                    {
                        return $"{name} needs a value";
                    }

                    value = args[i + 1];
                    args.RemoveRange(i, 2);
                }
                else if (args[i].StartsWith(name + "=", StringComparison.Ordinal))
                {
                    value = args[i][(name.Length + 1)..];
                    args.RemoveAt(i);
                }

                if (value is not null)
                {
                    if (name == "--admin")
                    {
                        admin = value;
                    }
                    else
                    {
                        tokenFile = value;
                    }

                    i--;
                    break;
                }
            }
        }

        return null;
    }

    /// <summary>The client, or the line and exit code saying why there is none.</summary>
    public static (AdminClient? Client, string? Error) Create(string? admin, string? tokenFile)
    {
        admin ??= Environment.GetEnvironmentVariable(AdminVariable);
        tokenFile ??= Environment.GetEnvironmentVariable(TokenVariable);
        if (string.IsNullOrEmpty(admin))
        {
            return (null, $"no admin API given: --admin http://HOST:PORT or {AdminVariable} (the sidecar's Admin:Listen)");
        }

        if (!Uri.TryCreate(admin.Contains("://", StringComparison.Ordinal) ? admin : "http://" + admin, UriKind.Absolute, out var address)
            || address.Scheme != Uri.UriSchemeHttp || address.AbsolutePath != "/" || !string.IsNullOrEmpty(address.Query))
        {
            return (null, $"--admin '{admin}' is not http://HOST:PORT");
        }

        if (string.IsNullOrEmpty(tokenFile))
        {
            return (null, $"no token given: --token-file F or {TokenVariable} (a file holding an admin bearer token)");
        }

        string token;
        try
        {
            token = File.ReadAllText(tokenFile);
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            return (null, $"--token-file {IoErrors.Line(tokenFile, ex)}");
        }

        token = token.EndsWith("\r\n", StringComparison.Ordinal) ? token[..^2] : token.EndsWith('\n') ? token[..^1] : token;
        if (token.Length == 0 || token.Any(char.IsWhiteSpace))
        {
            return (null, $"--token-file {tokenFile}: {(token.Length == 0 ? "is empty" : "holds more than one line or spaces")} (expected the bearer token alone)");
        }

        return (new AdminClient(address, token, tokenFile), null);
    }

    /// <summary>Sends the request; on success the parsed body, else the line to print (the server's error, or why it could not be reached).</summary>
    public async Task<(JsonElement? Body, string? Error)> SendAsync(HttpMethod method, string pathAndQuery, byte[]? body = null)
    {
        // Never through a proxy from the environment: the admin API is spoken to directly.
        using var handler = new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromSeconds(5) };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        using var request = new HttpRequestMessage(method, new Uri(_base, pathAndQuery));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } };
        }

        var where = _base.GetLeftPart(UriPartial.Authority);
        try
        {
            using var response = await http.SendAsync(request).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            JsonElement? parsed = null;
            try
            {
                parsed = JsonDocument.Parse(text).RootElement.Clone();
            }
            catch (JsonException)
            {
            }

            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                return (null, $"{where}: the token in {_tokenFile} was refused (401): its SHA-256 must be in the sidecar's Admin:TokenSha256");
            }

            if (!response.IsSuccessStatusCode)
            {
                var message = parsed is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String
                    ? e.GetString()! : $"HTTP {(int)response.StatusCode}";
                return (parsed, message.ReplaceLineEndings(" "));
            }

            return parsed is null ? (null, $"{where}: the answer is not JSON (is this the admin port, not the stats or proxy port?)") : (parsed, null);
        }
        catch (HttpRequestException ex) when (ex.InnerException is SocketException socket)
        {
            return (null, $"{where}: {(socket.SocketErrorCode == SocketError.ConnectionRefused ? "connection refused (is the sidecar running with Admin:Listen there?)" : "cannot connect: socket error " + socket.SocketErrorCode)}");
        }
        catch (HttpRequestException ex)
        {
            return (null, $"{where}: {(ex.HttpRequestError == HttpRequestError.InvalidResponse ? "the answer is not HTTP/1.1 (is this the admin port?)" : "the request failed: " + ex.HttpRequestError)}");
        }
        catch (TaskCanceledException)
        {
            return (null, $"{where}: no answer within 30 s");
        }
    }

    public static byte[] Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            write(w);
        }

        return buffer.WrittenSpan.ToArray();
    }

    public static string Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString()! : v.ToString() : string.Empty;

    /// <summary>One line on stderr for a command; the code says whether it was usage (2) or the server (1).</summary>
    public static async Task<int> FailAsync(TextWriter stderr, string command, string error, int code)
    {
        await stderr.WriteLineAsync($"{command}: {error}").ConfigureAwait(false);
        return code;
    }

    internal static string Escape(string s) => Uri.EscapeDataString(s);
}
