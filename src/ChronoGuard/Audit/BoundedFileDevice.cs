using FASTER.core;
using Microsoft.Win32.SafeHandles;

namespace ChronoGuard.Audit;

/// <summary>
/// FASTER's segment files with a bounded number of open descriptors. FASTER's own device on Linux
/// (ManagedLocalStorageDevice) keeps a read and a write handle for every segment it ever touched until
/// the segment is deleted, so a log that keeps everything holds two descriptors per segment forever.
/// Here one handle per segment is opened on demand and the least recently used ones beyond
/// <see cref="MaxOpen"/> are closed as soon as no I/O uses them: old segments are only read again by a
/// scan, which reopens them. Writes go through <see cref="FileOptions.WriteThrough"/> like FASTER's.
/// </summary>
internal sealed unsafe class BoundedFileDevice : StorageDeviceBase
{
    /// <summary>The tail segment, the one before it (page flushes span both) and two a reader may use.</summary>
    public const int MaxOpen = 4;

    private readonly bool _readOnly;
    private readonly Lock _gate = new();
    private readonly Dictionary<int, Slot> _open = [];
    private long _uses;
    private bool _disposed;

    public BoundedFileDevice(string filename, bool readOnly)
        : base(filename, 512, Devices.CAPACITY_UNSPECIFIED)
    {
        _readOnly = readOnly;
        var file = new FileInfo(filename);
        if (file.Directory is { Exists: true } dir)
        {
            // What FASTER's device recovers: the range of segment files present.
            var ids = new List<int>();
            foreach (var item in dir.GetFiles(file.Name + ".*"))
            {
                if (int.TryParse(item.Name.AsSpan(file.Name.Length + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                {
                    ids.Add(id);
                }
            }

            ids.Sort();
            var previous = -1;
            foreach (var id in ids)
            {
                if (id != previous + 1)
                {
                    startSegment = id;
                }
                else
                {
                    endSegment = id;
                }

                previous = id;
            }
        }
    }

    /// <summary>Descriptors open right now (for tests and metrics).</summary>
    public int OpenHandles
    {
        get
        {
            lock (_gate)
            {
                return _open.Count;
            }
        }
    }

    public override void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context) =>
        Run(segmentId, write: false, (long)sourceAddress, destinationAddress, readLength, callback, context);

    public override void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context) =>
        Run(segmentId, write: true, (long)destinationAddress, sourceAddress, numBytesToWrite, callback, context);

    public override void RemoveSegment(int segment)
    {
        lock (_gate)
        {
            if (_open.Remove(segment, out var slot))
            {
                slot.Closing = true;
                if (slot.Users == 0)
                {
                    slot.Handle.Dispose();
                }
            }
        }

        try
        {
            File.Delete(GetSegmentFilename(FileName, segment));
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public override void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result)
    {
        RemoveSegment(segment);
        callback(result);
    }

    public override long GetFileSize(int segment)
    {
        if (segmentSize > 0)
        {
            return segmentSize;
        }

        var file = new FileInfo(GetSegmentFilename(FileName, segment));
        return file.Exists ? file.Length : 0;
    }

    public override void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var slot in _open.Values)
            {
                slot.Closing = true;
                if (slot.Users == 0)
                {
                    slot.Handle.Dispose();
                }
            }

            _open.Clear();
        }
    }

    private void Run(int segment, bool write, long offset, IntPtr buffer, uint length, DeviceIOCompletionCallback callback, object context)
    {
        // Off the caller's thread, as FASTER's own device completes: FASTER may hold its epoch here.
        _ = Task.Run(() =>
        {
            uint error = 0;
            var done = 0;
            Slot? slot = null;
            try
            {
                slot = Acquire(segment);
                var span = new Span<byte>((void*)buffer, (int)length);
                if (write)
                {
                    RandomAccess.Write(slot.Handle, span, offset);
                    done = (int)length;
                }
                else
                {
                    while (done < span.Length)
                    {
                        var n = RandomAccess.Read(slot.Handle, span[done..], offset + done);
                        if (n == 0)
                        {
                            break;
                        }

                        done += n;
                    }

                    // Past the end of the file is nothing: FASTER's read buffers are pooled, and what an
                    // earlier read left there must not read as log data.
                    span[done..].Clear();
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                error = ex.HResult is var h && (h & 0xFFFF) != 0 ? (uint)(h & 0xFFFF) : 1;
            }
            finally
            {
                if (slot is not null)
                {
                    Release(slot);
                }
            }

            callback(error, (uint)done, context);
        });
    }

    private Slot Acquire(int segment)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_open.TryGetValue(segment, out var slot))
            {
                // FASTER's device opens or creates in both directions; a read-only log only reads.
                var handle = File.OpenHandle(
                    GetSegmentFilename(FileName, segment),
                    FileMode.OpenOrCreate,
                    _readOnly ? FileAccess.Read : FileAccess.ReadWrite,
                    FileShare.ReadWrite | FileShare.Delete,
                    _readOnly ? FileOptions.None : FileOptions.WriteThrough);
                slot = new Slot(handle);
                _open[segment] = slot;
            }

            slot.Users++;
            slot.LastUse = ++_uses;
            return slot;
        }
    }

    private void Release(Slot slot)
    {
        lock (_gate)
        {
            slot.Users--;
            if (slot.Closing)
            {
                if (slot.Users == 0)
                {
                    slot.Handle.Dispose();
                }

                return;
            }

            // Beyond the bound, close the least recently used idle handles; a handle in use closes when released.
            while (_open.Count > MaxOpen)
            {
                var oldest = -1;
                Slot? victim = null;
                foreach (var (id, candidate) in _open)
                {
                    if (candidate.Users == 0 && (victim is null || candidate.LastUse < victim.LastUse))
                    {
                        (oldest, victim) = (id, candidate);
                    }
                }

                if (victim is null)
                {
                    return;
                }

                _open.Remove(oldest);
                victim.Handle.Dispose();
            }
        }
    }

    private sealed class Slot(SafeFileHandle handle)
    {
        public SafeFileHandle Handle { get; } = handle;

        public int Users { get; set; }

        public long LastUse { get; set; }

        public bool Closing { get; set; }
    }
}
