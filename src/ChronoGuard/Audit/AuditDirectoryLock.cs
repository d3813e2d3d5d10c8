using System.Globalization;

namespace ChronoGuard.Audit;

/// <summary>
/// One writer per audit directory: an exclusive lock on <c>writer.lock</c>, held for the writer's
/// lifetime. .NET opens the file with <see cref="FileShare.None"/> as flock(LOCK_EX), which another
/// process (or another open in this one) cannot take, and the kernel drops it when the holder dies, so
/// a kill -9 never leaves a stale lock. Because that same lock keeps others from even reading the file,
/// the holder's pid goes in <c>writer.pid</c> beside it. Readers (verify, export) never touch either.
/// </summary>
internal sealed class AuditDirectoryLock : IDisposable
{
    public const string LockFile = "writer.lock";
    public const string PidFile = "writer.pid";

    private readonly FileStream _stream;
    private readonly string _directory;

    private AuditDirectoryLock(FileStream stream, string directory)
    {
        _stream = stream;
        _directory = directory;
    }

    /// <summary>Takes the lock or throws <see cref="IOException"/> naming the holder's pid.</summary>
    public static AuditDirectoryLock Acquire(string directory)
    {
        var path = Path.Combine(directory, LockFile);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException) when (File.Exists(path))
        {
            throw new IOException($"{directory}: another chronoguard writer holds this audit directory (pid {Holder(directory)}, {path}); one writer per directory");
        }

        var pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n";
        stream.SetLength(0);
        stream.Write(System.Text.Encoding.ASCII.GetBytes(pid));
        stream.Flush();
        File.WriteAllText(Path.Combine(directory, PidFile), pid);
        return new AuditDirectoryLock(stream, directory);
    }

    private static string Holder(string directory)
    {
        try
        {
            var text = File.ReadAllText(Path.Combine(directory, PidFile)).Trim();
            return text.Length == 0 ? "unknown" : text;
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    public void Dispose()
    {
        try
        {
            File.Delete(Path.Combine(_directory, PidFile));
        }
        catch (IOException)
        {
            // The pid file is a courtesy; the lock itself goes with the stream.
        }
        catch (UnauthorizedAccessException)
        {
        }

        _stream.Dispose();
    }
}
