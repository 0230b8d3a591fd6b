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
