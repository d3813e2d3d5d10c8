using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Resolution;

namespace ChronoGuard.Tests.Resolution;

/// <summary>
/// A resolver on 127.0.0.1 that answers nothing by itself: the test takes each question it receives
/// (<see cref="NextAsync"/>) and sends whatever it likes back, from this socket or another one, when it
/// likes: the right answer, a late one, two, a forged one, none.
/// </summary>
internal sealed class ScriptedUpstream : IDisposable
{
    private readonly Socket _socket;

    public ScriptedUpstream()
    {
        // Room for a thousand questions arriving at once (the kernel caps it at rmem_max).
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 4 << 20 };
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        EndPoint = (IPEndPoint)_socket.LocalEndPoint!;
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>The next question that arrives (waiting up to 30 s).</summary>
    public async Task<Asked> NextAsync()
    {
        var buffer = new byte[4096];
        var got = await _socket.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0)).WaitAsync(TimeSpan.FromSeconds(30));
        return new Asked(buffer[..got.ReceivedBytes], (IPEndPoint)got.RemoteEndPoint);
    }

    public void Send(IPEndPoint to, byte[] message) => _socket.SendTo(message, to);

    /// <summary>
    /// An answer to <paramref name="asked"/> with one A record <paramref name="address"/>; the other
    /// parameters forge it: another ID, name, type or class in its question, or the QR bit clear.
    /// </summary>
    public static byte[] AnswerTo(Asked asked, byte[] address, ushort? id = null, string? name = null, ushort? type = null, ushort klass = DnsWire.ClassIn, bool response = true) =>
        new DnsMessages().Header(id ?? asked.Id, (ushort)(response ? 0x8180 : 0x0100), 1, 1, 0, 0)
            .Name(name ?? asked.Name).U16(type ?? asked.Type).U16(klass)
            .Record("", DnsWire.TypeA, 300, d => d.Bytes(address), ownerPointer: 12)
            .ToArray();

    public void Dispose() => _socket.Dispose();

    /// <summary>One question as it arrived, and where from (the guard's socket).</summary>
    internal sealed record Asked(byte[] Message, IPEndPoint From)
    {
        public ushort Id => DnsMessages.ReadU16(Message, 0);

        public string Name
        {
            get
            {
                var labels = new List<string>();
                for (var at = DnsWire.HeaderLength; Message[at] != 0; at += Message[at] + 1)
                {
                    labels.Add(Encoding.ASCII.GetString(Message, at + 1, Message[at]));
                }

                return string.Join('.', labels);
            }
        }

        public ushort Type => DnsMessages.ReadU16(Message, DnsWire.HeaderLength + Name.Length + 2);
    }
}
