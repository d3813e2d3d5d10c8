using System.Buffers;

namespace ChronoGuard.Proxy;

/// <summary>
/// Finds the SNI host name in a TLS ClientHello without consuming or copying the bytes (RFC 8446
/// §4.1.2 and §5.1, RFC 6066 §3). A handshake message may be fragmented over any number of
/// handshake records, so the message is reassembled across consecutive records before it is judged:
/// judging the first record alone classed a split hello as "not TLS" (fronting past the SNI check).
/// The whole message is walked, so that a hello whose lengths disagree is refused rather than read one
/// way here and another way by the upstream.
/// </summary>
internal static class TlsClientHello
{
    public enum Result : byte
    {
        /// <summary>Nothing wrong yet, but the whole ClientHello has not arrived.</summary>
        NeedMore,

        /// <summary>The first bytes are not a TLS handshake record at all (first byte not 22, or major version not 3).</summary>
        NotTls,

        /// <summary>A well-formed ClientHello without a server_name extension.</summary>
        NoSni,

        /// <summary>
        /// TLS-looking bytes that no conforming client sends: inconsistent lengths, another record type
        /// interleaved, a record version that changes, a message over <see cref="MaxHelloBytes"/>, or a
        /// server_name that is not exactly one valid host name.
        /// </summary>
        Malformed,

        /// <summary>A well-formed ClientHello naming one host, copied to the caller's buffer.</summary>
        Found,

        /// <summary>
        /// A well-formed ClientHello carrying <c>encrypted_client_hello</c>: its SNI is the outer name
        /// and the name the server acts on is encrypted, so the SNI proves nothing.
        /// </summary>
        EncryptedClientHello,
    }

    /// <summary>
    /// The largest ClientHello message (header included) we judge. Real hellos are ~0.5 KB, ~1.8 KB with a
    /// post-quantum key share (X25519MLKEM768 adds 1,184 bytes); 16 KiB is nine times that, is what one
    /// record could always carry, and bounds what a tunnel buffers before its first byte is relayed.
    /// </summary>
    public const int MaxHelloBytes = 16 * 1024;

    /// <summary>Real clients use one record (two when a hello outgrows 16 KiB); more only spreads a hello thin.</summary>
    public const int MaxRecords = 64;

    private const int MaxFragment = 16 * 1024; // RFC 8446 §5.1: 2^14
    private const int MaxHostName = 255;
    private const byte Handshake = 22;
    private const byte ChangeCipherSpec = 20;
    private const byte Alert = 21;
    private const byte ClientHelloType = 1;
    private const int ServerNameType = 0;
    private const int EncryptedClientHelloType = 0xfe0d; // RFC 9849 (draft-ietf-tls-esni) §5

    public static Result TryGetSni(in ReadOnlySequence<byte> input, Span<byte> hostBuffer, out int hostLength)
    {
        hostLength = 0;
        var framing = CheckRecords(input, out var messageLength);
        if (framing != Result.Found)
        {
            return framing;
        }

        var result = ParseHello(input, messageLength, hostBuffer, out hostLength);
        if (result != Result.Found)
        {
            hostLength = 0; // a name read before a later defect is not a name
        }

        return result;
    }

    /// <summary>
    /// Walks the record headers until they cover the whole handshake message. Found means every record
    /// is present and consistent and they carry exactly one ClientHello of <paramref name="messageLength"/>.
    /// </summary>
    private static Result CheckRecords(in ReadOnlySequence<byte> input, out int messageLength)
    {
        messageLength = -1;
        var reader = new SequenceReader<byte>(input);
        Span<byte> header = stackalloc byte[5];
        Span<byte> handshake = stackalloc byte[4];
        var handshakeHave = 0;
        var version = (byte)0;
        var records = 0;
        var covered = 0;
        while (messageLength < 0 || covered < messageLength)
        {
            var have = (int)Math.Min(reader.Remaining, 5);
            reader.TryCopyTo(header[..have]);
            var check = CheckRecordHeader(header[..have], records, version);
            if (check != Result.Found)
            {
                return check;
            }

            if (have < 5)
            {
                return Result.NeedMore;
            }

            version = header[2];
            var fragment = (header[3] << 8) | header[4];
            if (fragment is 0 or > MaxFragment || ++records > MaxRecords)
            {
                return Result.Malformed;
            }

            reader.Advance(5);
            covered += fragment;
            var start = reader.Consumed;
            while (handshakeHave < 4 && reader.Consumed - start < fragment && reader.TryRead(out var b))
            {
                handshake[handshakeHave++] = b;
            }

            if (handshakeHave > 0 && handshake[0] != ClientHelloType)
            {
                return Result.Malformed;
            }

            if (handshakeHave == 4 && messageLength < 0)
            {
                messageLength = 4 + ((handshake[1] << 16) | (handshake[2] << 8) | handshake[3]);
                if (messageLength > MaxHelloBytes)
                {
                    return Result.Malformed;
                }
            }

            // The hello must end exactly where a record ends: trailing bytes would be a second message
            // no client sends before the server's answer.
            if (messageLength >= 0 && covered > messageLength)
            {
                return Result.Malformed;
            }

            var rest = fragment - (reader.Consumed - start);
            if (reader.Remaining < rest)
            {
                return Result.NeedMore;
            }

            reader.Advance(rest);
        }

        return Result.Found;
    }

    /// <summary>
    /// First bytes that begin a change_cipher_spec (one byte) or alert (two bytes) record: TLS stacks
    /// skip some of these ahead of a ClientHello (BoringSSL discards up to four warning alerts before
    /// it knows the version: ssl/tls_record.cc, <c>ssl_process_alert</c>), so on a port where other
    /// protocols pass such a record would carry the hello behind it past the SNI check. No client
    /// sends one first: Malformed, refused on every port. Anything else is another protocol.
    /// </summary>
    private static Result SkippableRecord(ReadOnlySpan<byte> h)
    {
        var body = h[0] switch
        {
            ChangeCipherSpec => 1,
            Alert => 2,
            _ => 0,
        };
        if (body == 0
            || (h.Length >= 2 && h[1] != 3)
            || (h.Length >= 3 && h[2] > 4)
            || (h.Length >= 4 && h[3] != 0)
            || (h.Length >= 5 && h[4] != body))
        {
            return Result.NotTls;
        }

        return h.Length >= 5 ? Result.Malformed : Result.NeedMore;
    }

    /// <summary>Judges as much of a record header as has arrived; Found means "nothing wrong so far".</summary>
    private static Result CheckRecordHeader(ReadOnlySpan<byte> h, int records, byte version)
    {
        if (h.IsEmpty)
        {
            return Result.NeedMore;
        }

        if (h[0] != Handshake)
        {
            // Before the first record this is simply another protocol, unless it is a TLS record a
            // server skips; between fragments it is an alert, change_cipher_spec or data record
            // interleaved into the hello.
            return records == 0 ? SkippableRecord(h) : Result.Malformed;
        }

        if (h.Length >= 2 && h[1] != 3)
        {
            return records == 0 ? Result.NotTls : Result.Malformed;
        }

        // legacy_record_version is 3.0 to 3.4 in the first record and the same in every later one.
        if (h.Length >= 3 && (records == 0 ? h[2] > 4 : h[2] != version))
        {
            return Result.Malformed;
        }

        return Result.Found;
    }

    private static Result ParseHello(in ReadOnlySequence<byte> input, int messageLength, Span<byte> hostBuffer, out int hostLength)
    {
        hostLength = 0;
        var m = new Fragments(input, messageLength);
        m.Skip(4); // handshake header, checked with the records
        // legacy_version, random, legacy_session_id <0..32>, cipher_suites <2..2^16-2>, compression <1..2^8-1>
        if (!m.TryReadU8(out var major) || major != 3 || !m.Skip(1 + 32)
            || !m.TryReadU8(out var sessionId) || sessionId > 32 || !m.Skip(sessionId)
            || !m.TryReadU16(out var suites) || suites < 2 || (suites & 1) != 0 || !m.Skip(suites)
            || !m.TryReadU8(out var compression) || compression < 1 || !m.Skip(compression))
        {
            return Result.Malformed;
        }

        if (m.Left == 0)
        {
            return Result.NoSni; // a TLS 1.2 hello may end without extensions
        }

        if (!m.TryReadU16(out var extensionsLength) || extensionsLength != m.Left)
        {
            return Result.Malformed;
        }

        var found = false;
        var encrypted = false;
        while (m.Left > 0)
        {
            if (!m.TryReadU16(out var type) || !m.TryReadU16(out var length) || length > m.Left)
            {
                return Result.Malformed;
            }

            if (type != ServerNameType)
            {
                encrypted |= type == EncryptedClientHelloType;
                m.Skip(length);
                continue;
            }

            // RFC 8446 §4.2: at most one extension of a type; a second server_name could be read by
            // the upstream instead of the first.
            if (found || !TryReadServerName(ref m, length, hostBuffer, out hostLength))
            {
                return Result.Malformed;
            }

            found = true;
        }

        // Judged once the whole hello is known to be well formed: a malformed one stays Malformed.
        return encrypted ? Result.EncryptedClientHello : found ? Result.Found : Result.NoSni;
    }

    /// <summary>
    /// server_name = ServerNameList &lt;1..2^16-1&gt; of (name_type, HostName &lt;1..2^16-1&gt;). We accept
    /// exactly one entry, of type host_name: RFC 6066 allows one name per type and defines no other
    /// type, so anything else is a list an upstream might read differently from us.
    /// </summary>
    private static bool TryReadServerName(ref Fragments m, int length, Span<byte> hostBuffer, out int hostLength)
    {
        hostLength = 0;
        if (length < 5 || !m.TryReadU16(out var listLength) || listLength != length - 2
            || !m.TryReadU8(out var nameType) || nameType != 0
            || !m.TryReadU16(out var nameLength) || nameLength == 0 || nameLength != listLength - 3
            || nameLength > MaxHostName || nameLength > hostBuffer.Length)
        {
            return false;
        }

        var previous = (byte)'.';
        for (var i = 0; i < nameLength; i++)
        {
            m.TryReadU8(out var c);
            if (!IsHostNameByte((byte)c) || (c == '.' && previous == '.'))
            {
                return false; // a byte a DNS name cannot hold, or an empty label (leading dot, "..")
            }

            hostBuffer[i] = (byte)c;
            previous = (byte)c;
        }

        // RFC 6066: "without a trailing dot".
        if (previous == '.')
        {
            return false;
        }

        hostLength = nameLength;
        return true;
    }

    /// <summary>The bytes the HTTP side accepts in a host (letters, digits, '-', '_', '.'), nothing else.</summary>
    private static bool IsHostNameByte(byte c) =>
        (uint)((c | 0x20) - 'a') <= 'z' - 'a' || (uint)(c - '0') <= 9 || c is (byte)'-' or (byte)'_' or (byte)'.';

    /// <summary>
    /// Reads one handshake message across the records that carry it, skipping their headers; every read is
    /// bounded by the message length, which the record walk has matched to the records exactly.
    /// </summary>
    private ref struct Fragments
    {
        private SequenceReader<byte> _reader;
        private int _inRecord;

        public Fragments(in ReadOnlySequence<byte> input, int messageLength)
        {
            _reader = new SequenceReader<byte>(input);
            _inRecord = 0;
            Left = messageLength;
        }

        public int Left { get; private set; }

        public bool TryReadU8(out int value)
        {
            value = 0;
            if (Left == 0)
            {
                return false;
            }

            EnterRecord();
            _reader.TryRead(out var b);
            _inRecord--;
            Left--;
            value = b;
            return true;
        }

        public bool TryReadU16(out int value)
        {
            value = 0;
            if (Left < 2)
            {
                return false;
            }

            TryReadU8(out var hi);
            TryReadU8(out var lo);
            value = (hi << 8) | lo;
            return true;
        }

        public bool Skip(int count)
        {
            if (count > Left)
            {
                return false;
            }

            while (count > 0)
            {
                EnterRecord();
                var take = Math.Min(count, _inRecord);
                _reader.Advance(take);
                _inRecord -= take;
                Left -= take;
                count -= take;
            }

            return true;
        }

        private void EnterRecord()
        {
            if (_inRecord == 0)
            {
                _reader.Advance(3);
                _reader.TryRead(out var hi);
                _reader.TryRead(out var lo);
                _inRecord = (hi << 8) | lo;
            }
        }
    }
}
