namespace ChronoGuard.Admin;

/// <summary>Answers one authenticated request; <paramref name="id"/> is the path's last segment under a prefix route (empty otherwise).</summary>
internal delegate Task<AdminResponse> AdminRoute(AdminRequest request, string id);
