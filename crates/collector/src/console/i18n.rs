//! The console's words in 简体中文 (first) and English. Templates read
//! them as `t.key`; a key missing in the table is an error a test finds
//! (every template is rendered in both languages by the tests).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;
use watchpost_model::Severity;
use watchpost_model::api::FaultStatus;

/// A console language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// 简体中文.
    Zh,
    /// English.
    En,
}

impl Lang {
    /// `zh` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// From `zh` / `en`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The HTML `lang` attribute.
    pub fn html(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The words in this language.
    pub fn words(self) -> &'static HashMap<&'static str, &'static str> {
        static ZH: OnceLock<HashMap<&str, &str>> = OnceLock::new();
        static EN: OnceLock<HashMap<&str, &str>> = OnceLock::new();
        let (cell, col) = match self {
            Lang::Zh => (&ZH, 0),
            Lang::En => (&EN, 1),
        };
        cell.get_or_init(|| {
            WORDS
                .iter()
                .map(|(k, zh, en)| (*k, if col == 0 { *zh } else { *en }))
                .collect()
        })
    }

    /// A word by key (the key itself if missing).
    pub fn word(self, key: &str) -> &'static str {
        self.words().get(key).copied().unwrap_or("?")
    }

    /// A severity's name: 紧急 / 一般 / 轻微.
    pub fn severity(self, s: Severity) -> &'static str {
        self.word(match s {
            Severity::Urgent => "sev_urgent",
            Severity::General => "sev_general",
            Severity::Minor => "sev_minor",
        })
    }

    /// A fault status's name.
    pub fn status(self, s: FaultStatus) -> &'static str {
        self.word(match s {
            FaultStatus::Open => "st_open",
            FaultStatus::Acknowledged => "st_acknowledged",
            FaultStatus::Resolved => "st_resolved",
            FaultStatus::Closed => "st_closed",
            FaultStatus::Suppressed => "st_suppressed",
        })
    }
}

/// (key, 中文, English).
const WORDS: &[(&str, &str, &str)] = &[
    ("product", "哨所 Watchpost", "Watchpost"),
    ("nav_overview", "总览", "Overview"),
    ("nav_faults", "故障", "Faults"),
    ("nav_oncall", "值班", "On call"),
    ("sign_in", "登录", "Sign in"),
    ("sign_out", "退出", "Sign out"),
    ("user", "用户名", "User name"),
    ("password", "密码", "Password"),
    (
        "sign_in_failed",
        "用户名或密码错误，或账号已停用。",
        "Wrong user name or password, or the user is disabled.",
    ),
    (
        "session_expired",
        "会话已过期，请重新登录。",
        "Your session expired; please sign in again.",
    ),
    ("signed_in_as", "当前用户", "Signed in as"),
    ("switch_lang", "English", "中文"),
    ("hosts", "主机与设备", "Hosts and devices"),
    ("no_hosts", "还没有代理连接。", "No agent has connected yet."),
    ("state_ok", "正常", "OK"),
    ("state_unreachable", "失联", "Unreachable"),
    ("state_maintenance", "维护中", "In maintenance"),
    ("open_faults", "未关闭故障", "Open faults"),
    ("due_within_hour", "一小时内到期", "Due within the hour"),
    ("none", "无", "None"),
    ("on_duty", "当前值班", "On duty now"),
    ("nobody_on_duty", "没有排班。", "Nobody is on the roster."),
    ("until", "至", "until"),
    ("updated", "更新于", "Updated"),
    ("sev_urgent", "紧急", "Urgent"),
    ("sev_general", "一般", "General"),
    ("sev_minor", "轻微", "Minor"),
    ("st_open", "待响应", "Open"),
    ("st_acknowledged", "已响应", "Acknowledged"),
    ("st_resolved", "已恢复", "Resolved"),
    ("st_closed", "已关闭", "Closed"),
    ("st_suppressed", "已抑制", "Suppressed"),
    ("severity", "级别", "Severity"),
    ("status", "状态", "Status"),
    ("host", "主机", "Host"),
    ("rule", "规则", "Rule"),
    ("source", "来源", "Source"),
    ("src_rule", "规则", "Rule"),
    ("src_reported", "报障", "Reported"),
    ("src_drill", "演练", "Drill"),
    ("opened_from", "发生于之后", "Opened from"),
    ("opened_before", "发生于之前", "Opened before"),
    ("any", "全部", "Any"),
    ("filter", "筛选", "Filter"),
    ("summary", "摘要", "Summary"),
    ("opened_at", "发生时间", "Opened"),
    ("response_due", "响应期限", "Respond by"),
    ("resolve_due", "解决期限", "Resolve by"),
    ("met", "已达标", "met"),
    ("missed", "已超时", "missed"),
    ("pending", "进行中", "pending"),
    ("overdue", "已超时", "overdue"),
    ("acknowledged_by", "响应人", "Acknowledged by"),
    ("assignee", "处理人", "Assignee"),
    ("resolved_at", "恢复时间", "Resolved"),
    ("closed_at", "关闭时间", "Closed"),
    ("cause", "故障原因", "Cause"),
    ("handling", "处理过程", "Handling"),
    ("value", "当前值", "Value"),
    ("timeline", "处理记录", "Timeline"),
    ("notifications", "通知", "Notifications"),
    ("no_notifications", "没有通知。", "No notifications."),
    ("channel", "渠道", "Channel"),
    ("recipient", "接收人", "Recipient"),
    ("actions", "处理", "Actions"),
    ("ack", "响应", "Acknowledge"),
    ("comment", "说明", "Comment"),
    ("assign", "指派", "Assign"),
    ("note", "备注", "Note"),
    ("add_note", "添加备注", "Add note"),
    ("resolve", "标记恢复", "Resolve"),
    ("close", "关闭故障", "Close"),
    (
        "close_needs",
        "关闭需填写故障原因和处理过程。",
        "Closing needs the cause and the handling.",
    ),
    ("maintenance", "维护窗口", "Maintenance window"),
    ("change", "变更", "Change"),
    ("no_faults", "没有符合条件的故障。", "No faults match."),
    ("prev", "上一页", "Previous"),
    ("next", "下一页", "Next"),
    ("page", "第 {n} 页", "Page {n}"),
    ("fault", "故障", "Fault"),
    ("back_to_faults", "返回故障列表", "Back to faults"),
    ("action_done", "已保存。", "Saved."),
    ("error", "错误", "Error"),
    ("forbidden", "无权进行此操作。", "You may not do this."),
    ("not_found", "没有这个页面。", "No such page."),
    ("skip", "跳到正文", "Skip to content"),
    ("flapping", "抖动", "flapping"),
    ("count", "次数", "Count"),
    ("time", "时间", "Time"),
    ("who", "操作人", "By"),
    ("what", "事项", "What"),
    ("all_open", "全部未关闭", "All open"),
    ("range", "时间范围", "Range"),
    ("interfaces", "端口", "Interfaces"),
    ("interface", "端口", "Interface"),
    ("oper_status", "运行状态", "Status"),
    ("rx", "入流量", "In"),
    ("tx", "出流量", "Out"),
    ("utilisation", "利用率 入/出", "Utilisation in/out"),
    ("errors", "错误包", "Errors"),
    ("series_around", "故障前后的数据", "The series around the fault"),
    ("ch_cpu", "CPU 使用率", "CPU usage"),
    ("ch_memory", "内存与交换区使用率", "Memory and swap used"),
    ("ch_load", "系统负载", "Load"),
    ("ch_fs", "文件系统使用率", "Filesystems used"),
    ("ch_disk", "磁盘繁忙度", "Disk busy"),
    ("ch_net", "网络流量", "Network traffic"),
    ("ch_if_in", "端口入流量", "Interface traffic in"),
    ("ch_if_out", "端口出流量", "Interface traffic out"),
    ("ch_sensors", "传感器", "Sensors"),
    ("memory", "内存", "memory"),
    ("swap", "交换区", "swap"),
    ("nav_inspections", "巡检", "Inspections"),
    (
        "done_of_due",
        "已检 {done} / 应检 {due} 项",
        "{done} of {due} items recorded",
    ),
    ("abnormal", "异常", "abnormal"),
    ("normal", "正常", "normal"),
    ("signed_by", "签字", "signed by"),
    ("reviewed_by", "审核", "reviewed by"),
    ("item", "检查项", "Item"),
    ("scope", "范围", "Scope"),
    ("result", "结果", "Result"),
    ("record", "记录", "Record"),
    ("remark", "说明", "Remark"),
    ("open_fault", "同时报障", "Open a fault"),
    ("why", "更正原因", "Why (amendment)"),
    ("save", "保存", "Save"),
    ("sign", "签字确认", "Sign"),
    ("review", "审核通过", "Review"),
    ("no_items", "今天没有应检项目。", "Nothing is due today."),
    ("nav_maintenance", "维护", "Maintenance"),
    ("nav_reports", "报表", "Reports"),
    ("nav_audit", "审计", "Audit"),
    ("team", "班组", "Team"),
    ("lead", "组长", "Lead"),
    ("managers", "负责人", "Managers"),
    ("roster", "值班表", "Roster"),
    ("month", "月份", "Month"),
    (
        "roster_hint",
        "每天 09:00 与 21:00 在岗人员；节假日与调休按工作日历。",
        "Who is on duty at 09:00 and 21:00 each day; holidays and make-up days from the working calendar.",
    ),
    ("date", "日期", "Date"),
    ("day_kind", "工作日/休息日", "Day"),
    ("working_day", "工作日", "Working day"),
    ("rest_day", "休息日", "Rest day"),
    ("new_window", "新建维护窗口", "New maintenance window"),
    ("blank_any", "留空为全部", "blank for any"),
    ("starts_at", "开始", "Starts"),
    ("ends_at", "结束", "Ends"),
    ("reason", "原因", "Reason"),
    ("ticket", "变更单号", "Change ticket"),
    ("add_window", "保存窗口", "Add window"),
    ("w_active", "生效中", "Active"),
    ("w_planned", "未开始", "Planned"),
    ("w_ended", "已结束", "Ended"),
    ("monthly", "运维月报", "Monthly service statistics"),
    ("daily", "日常巡检记录", "Daily inspection record"),
    ("format", "格式", "Format"),
    ("download", "生成并下载", "Generate and download"),
    ("stored_reports", "已生成的报表", "Stored reports"),
    ("kind", "类型", "Kind"),
    ("period", "周期", "Period"),
    ("size", "大小", "Size"),
    ("generated", "生成", "Generated"),
    ("address", "地址", "Address"),
    ("detail", "内容", "Detail"),
    ("nav_changes", "变更", "Changes"),
    ("nav_users", "用户", "Users"),
    ("nav_agents", "代理", "Agents"),
    ("nav_tokens", "我的令牌", "My tokens"),
    ("role", "角色", "Role"),
    ("role_viewer", "只读", "Viewer"),
    ("role_operator", "运维", "Operator"),
    ("role_approver", "审批", "Approver"),
    ("role_admin", "管理员", "Admin"),
    ("kind_host", "主机", "Host"),
    ("kind_snmp", "网络设备", "SNMP device"),
    ("kind_room", "机房", "Machine room"),
    ("user_name", "用户名", "User"),
    ("blank_generated", "留空则自动生成", "blank: generated"),
    ("new_user", "新建用户", "New user"),
    ("add_user", "创建用户", "Add user"),
    ("user_added", "已创建用户", "User added:"),
    ("created", "创建时间", "Created"),
    ("disabled", "已停用", "Disabled"),
    ("enabled", "正常", "Enabled"),
    ("disable", "停用", "Disable"),
    ("enable", "启用", "Enable"),
    ("you", "（本人）", "(you)"),
    (
        "shown_once",
        "只显示这一次，请立即妥善保存；离开本页后无法再次查看。",
        "Shown this once: keep it safe now; it cannot be shown again.",
    ),
    ("password_once", "初始密码", "Initial password"),
    (
        "open_api_hint",
        "API 处于开放模式（[security] api = \"open\"），没有用户与令牌。",
        "The API is open ([security] api = \"open\"): there are no users or tokens.",
    ),
    ("new_token", "新建 API 令牌", "New API token"),
    ("token_for", "用途", "What it is for"),
    ("expires_in", "有效期", "Expires in"),
    ("blank_never", "留空则不过期", "blank: never"),
    ("add_token", "创建令牌", "Add token"),
    ("token_added", "已创建令牌", "Token added"),
    (
        "token_once",
        "API 令牌（Authorization: Bearer …）",
        "API token (Authorization: Bearer …)",
    ),
    ("expires", "到期", "Expires"),
    ("last_used", "最近使用", "Last used"),
    ("revoke", "吊销", "Revoke"),
    ("t_active", "有效", "Active"),
    ("t_revoked", "已吊销", "Revoked"),
    ("t_expired", "已过期", "Expired"),
    ("enroll_agent", "登记代理", "Enrol an agent"),
    (
        "enroll_hint",
        "生成一次性登记令牌，写入该代理配置的 enroll_token；代理首次连接时换取自己的凭据。",
        "Makes a one-time enrolment token for the agent's enroll_token; on its first connection the agent trades it for its own credential.",
    ),
    ("agent_id", "代理 ID", "Agent id"),
    ("enroll_valid_for", "登记令牌有效期", "Enrolment token valid for"),
    ("credential_valid_for", "凭据有效期", "Credential valid for"),
    ("enroll", "生成登记令牌", "Enrol"),
    ("enrolled", "已为代理生成登记令牌", "Enrolment token made for"),
    ("use_before", "须在此前使用", "use before"),
    (
        "enroll_once",
        "写入代理配置（agent.toml）",
        "For the agent's config (agent.toml)",
    ),
    ("version", "版本", "Version"),
    ("last_seen", "最近通信", "Last seen"),
    ("series", "序列数", "Series"),
    ("clock_offset", "时钟偏差", "Clock offset"),
    ("credential", "凭据", "Credential"),
    ("refused", "拒收", "Refused"),
    ("a_connected", "在线", "Connected"),
    ("a_disconnected", "离线", "Disconnected"),
    ("a_never", "未连接过", "Never connected"),
    ("new_change", "新建变更申请", "New change request"),
    ("title", "标题", "Title"),
    ("content", "变更内容", "What will be done"),
    ("impact", "影响范围", "Impact"),
    ("test_plan", "测试方案", "Test plan"),
    ("rollback_plan", "回退方案", "Rollback plan"),
    (
        "scope_hint",
        "变更影响的对象（批准后据此生成维护窗口）：主机、标签或规则，至少填一项。",
        "What the change covers (its approval makes a maintenance window from this): hosts, labels or rules, at least one.",
    ),
    ("c_hosts", "主机（逗号分隔）", "Hosts (comma-separated)"),
    (
        "match_labels",
        "标签（label=value，逗号分隔）",
        "Labels (label=value, comma-separated)",
    ),
    ("rules", "规则（逗号分隔）", "Rules (comma-separated)"),
    ("request_change", "提交变更申请", "Request the change"),
    ("window", "时间窗口", "Window"),
    ("requested_by", "申请人", "Requested by"),
    ("decided_by", "审批人", "Decided by"),
    ("c_requested", "待审批", "Requested"),
    ("c_approved", "已批准", "Approved"),
    ("c_rejected", "已驳回", "Rejected"),
    ("c_in_progress", "实施中", "In progress"),
    ("c_done", "已完成", "Done"),
    ("c_rolled_back", "已回退", "Rolled back"),
    ("c_cancelled", "已取消", "Cancelled"),
    (
        "not_own_change",
        "变更须由申请人以外的审批人审批。",
        "A change is approved by an approver other than its requester.",
    ),
    ("approve", "批准", "Approve"),
    ("reject", "驳回", "Reject"),
    ("start_change", "开始实施", "Start"),
    ("finish_change", "实施结束", "Finish"),
    ("rollback_needs_reason", "回退时必填", "required when rolled back"),
    ("cancel_change", "取消变更", "Cancel the change"),
    (
        "faults_in_window",
        "窗口内发生的故障",
        "Faults opened in its window",
    ),
    ("readings", "当前读数", "Readings now"),
    ("device", "设备", "Device"),
    ("place", "位置", "Position"),
    ("ch_temperature", "温度", "Temperature"),
    ("ch_humidity", "湿度", "Humidity"),
    ("ch_alarms", "漏水、烟感、门禁", "Water leak, smoke, door"),
    ("ch_battery", "UPS 电池电量与负载", "UPS battery charge and load"),
    ("ch_minutes", "UPS 剩余供电时间", "UPS minutes remaining"),
    ("ch_voltage", "UPS 输入与输出电压", "UPS input and output voltage"),
    ("ch_on_battery", "UPS 电池供电", "UPS on battery"),
    ("ch_battery_temp", "UPS 电池温度", "UPS battery temperature"),
    ("charge", "电量", "Charge"),
    ("load", "负载", "Load"),
    ("input", "输入", "Input"),
    ("output", "输出", "Output"),
    ("water_leak", "漏水", "Water leak"),
    ("smoke", "烟感", "Smoke"),
    ("door_open", "门开", "Door open"),
    ("m_room_temperature_celsius", "温度 (°C)", "Temperature (°C)"),
    ("m_room_humidity_percent", "湿度 (%)", "Humidity (%)"),
    ("m_room_water_leak", "漏水", "Water leak"),
    ("m_room_smoke_detected", "烟感", "Smoke"),
    ("m_room_door_open", "门开", "Door open"),
    ("m_snmp_ups_on_battery", "UPS 电池供电", "UPS on battery"),
    ("m_snmp_ups_battery_low", "UPS 电池低", "UPS battery low"),
    (
        "m_snmp_ups_battery_charge_percent",
        "UPS 电量 (%)",
        "UPS charge (%)",
    ),
    (
        "m_snmp_ups_battery_minutes_remaining",
        "UPS 剩余时间 (分钟)",
        "UPS minutes remaining",
    ),
    (
        "m_snmp_ups_battery_temperature_celsius",
        "UPS 电池温度 (°C)",
        "UPS battery temperature (°C)",
    ),
    (
        "m_snmp_ups_input_voltage_volts",
        "UPS 输入电压 (V)",
        "UPS input voltage (V)",
    ),
    (
        "m_snmp_ups_output_voltage_volts",
        "UPS 输出电压 (V)",
        "UPS output voltage (V)",
    ),
    ("m_snmp_ups_output_load_percent", "UPS 负载 (%)", "UPS load (%)"),
    (
        "m_snmp_ups_seconds_on_battery",
        "UPS 电池供电时长 (秒)",
        "UPS seconds on battery",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_every_word_once() {
        let mut seen = std::collections::HashSet::new();
        for (k, zh, en) in WORDS {
            assert!(seen.insert(*k), "{k} twice");
            assert!(!zh.is_empty() && !en.is_empty(), "{k} is empty");
        }
        assert_eq!(Lang::Zh.severity(Severity::Urgent), "紧急");
        assert_eq!(Lang::Zh.severity(Severity::General), "一般");
        assert_eq!(Lang::Zh.severity(Severity::Minor), "轻微");
        assert_eq!(Lang::En.status(FaultStatus::Closed), "Closed");
    }
}
