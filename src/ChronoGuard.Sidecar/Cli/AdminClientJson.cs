using System.Text.Json;
using System.Text.Json.Serialization;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>Source-generated (NativeAOT) serialization of what the admin CLI re-prints.</summary>
[JsonSerializable(typeof(List<JsonElement>))]
internal sealed partial class AdminClientJson : JsonSerializerContext;
